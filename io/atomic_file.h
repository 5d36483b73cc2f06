#pragma once
// Writes a file so that readers see either the old file or the whole new one: the bytes go to a
// temporary file in the same folder, which is flushed to disk (fsync) and then renamed over
// `path`; the folder is synced too, so the rename itself survives a crash. On any error the
// temporary file is removed, `path` is untouched and keel::Error says what failed.
#include <cstddef>
#include <functional>
#include <string>

namespace keel::io {

// `write` is called once with a sink; each call of the sink appends bytes.
using ByteSink = std::function<void(const void* data, size_t size)>;
void write_file_atomically(const std::string& path, const std::string& tag,
                           const std::function<void(const ByteSink&)>& write);

// Removes the temporary files that writes to `path` killed mid-way left behind (a killed process
// cannot remove its own). Errors are ignored: leftovers are harmless, only untidy.
void remove_stale_temporaries(const std::string& path);

}  // namespace keel::io
