#include "keel/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "keel/core/error.h"

namespace keel::io {

namespace {

std::string system_error_text() { return std::strerror(errno); }

// Closes and removes the temporary file unless it was committed.
struct TemporaryFile {
  std::string name;
  int fd = -1;
  bool committed = false;
  ~TemporaryFile() {
    if (fd >= 0) ::close(fd);
    if (!committed && !name.empty()) ::unlink(name.c_str());
  }
};

// The temporary file of a write to `target` is "<folder>/.<name>.tmp-" + 6 characters of mkstemp.
std::string temporary_prefix(const std::filesystem::path& target) {
  std::string prefix = target.filename().string();
  prefix.insert(0, 1, '.');  // (not "." + name: GCC 12 warns falsely, -Wrestrict)
  return prefix + ".tmp-";
}

}  // namespace

void remove_stale_temporaries(const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path folder = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string prefix = temporary_prefix(target);
  std::error_code error;
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() == prefix.size() + 6 && name.starts_with(prefix)) std::filesystem::remove(it->path(), error);
  }
}

void write_file_atomically(const std::string& path, const std::string& tag,
                           const std::function<void(const ByteSink&)>& write) {
  const std::filesystem::path target(path);
  const std::filesystem::path folder = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  KEEL_CHECK(!path.empty() && target.has_filename(), tag, " invalid file name \"", path, "\"");
  TemporaryFile temporary;
  temporary.name = (folder / (temporary_prefix(target) + "XXXXXX")).string();
  temporary.fd = ::mkstemp(temporary.name.data());
  if (temporary.fd < 0) {
    const std::string why = system_error_text();
    temporary.name.clear();
    fail(tag, " cannot create a temporary file in ", folder.string(), " to write ", path, ": ", why);
  }
  const ByteSink sink = [&](const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t written = ::write(temporary.fd, bytes, size);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail(tag, " writing ", path, " failed: ", system_error_text());
      bytes += written;
      size -= static_cast<size_t>(written);
    }
  };
  write(sink);
  // mkstemp creates the file 0600; give it the mode a plain open would (0666 less the umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(temporary.fd, 0666 & ~mask);
  if (::fsync(temporary.fd) != 0) fail(tag, " flushing ", path, " to disk failed: ", system_error_text());
  if (::close(temporary.fd) != 0) {
    temporary.fd = -1;
    fail(tag, " closing ", path, " failed: ", system_error_text());
  }
  temporary.fd = -1;
  if (::rename(temporary.name.c_str(), path.c_str()) != 0)
    fail(tag, " renaming the temporary file onto ", path, " failed: ", system_error_text());
  temporary.committed = true;
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (folder_fd >= 0) {  // best effort: some file systems refuse fsync on folders
    ::fsync(folder_fd);
    ::close(folder_fd);
  }
}

}  // namespace keel::io
