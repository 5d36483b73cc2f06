// Plain, in-memory and gzip byte sources (see byte_source.h).
//
// The gzip reader is zlib's inflate with windowBits 15 + 16 (gzip framing only), which checks
// each member's CRC-32 and length trailer. Several members in a row are read as one stream, as
// gzip(1) does; any other bytes after the last member are an error rather than ignored, because
// a file with trailing garbage is not the file that was published.
#include "keel/io/byte_source.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "keel/core/error.h"

namespace keel::data::detail {
namespace {

class FileSource final : public ByteSource {
 public:
  FileSource(const std::string& path, const std::string& context) : context_(context) {
    std::error_code error;
    KEEL_CHECK(!std::filesystem::is_directory(path, error), context, ": is a folder, not a file");
    file_ = std::fopen(path.c_str(), "rb");
    KEEL_CHECK(file_ != nullptr, context, ": cannot open the file: ", std::strerror(errno));
    if (std::fseek(file_, 0, SEEK_END) == 0) {
      const long end = std::ftell(file_);
      if (end >= 0) size_ = static_cast<uint64_t>(end);
    }
    if (std::fseek(file_, 0, SEEK_SET) != 0 || !size_) {
      std::fclose(file_);
      fail(context, ": cannot determine the file's size (is it a regular file?)");
    }
  }
  ~FileSource() override { std::fclose(file_); }
  size_t read(uint8_t* out, size_t count) override {
    const size_t got = std::fread(out, 1, count, file_);
    KEEL_CHECK(!std::ferror(file_), context_, ": read error: ", std::strerror(errno));
    position_ += got;
    return got;
  }
  std::optional<uint64_t> remaining() const override {
    return *size_ > position_ ? *size_ - position_ : 0;
  }

 private:
  std::FILE* file_ = nullptr;
  std::string context_;
  std::optional<uint64_t> size_;
  uint64_t position_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t read(uint8_t* out, size_t count) override {
    const size_t got = std::min(count, size_ - position_);
    if (got) std::memcpy(out, data_ + position_, got);
    position_ += got;
    return got;
  }
  std::optional<uint64_t> remaining() const override { return size_ - position_; }

 private:
  const uint8_t* data_;
  size_t size_, position_ = 0;
};

// Replays bytes already read (the two magic bytes) before the rest of a source.
class PrefixedSource final : public ByteSource {
 public:
  PrefixedSource(std::vector<uint8_t> prefix, std::unique_ptr<ByteSource> rest)
      : prefix_(std::move(prefix)), rest_(std::move(rest)) {}
  size_t read(uint8_t* out, size_t count) override {
    size_t got = 0;
    while (got < count && used_ < prefix_.size()) out[got++] = prefix_[used_++];
    if (got < count) got += rest_->read(out + got, count - got);
    return got;
  }
  std::optional<uint64_t> remaining() const override {
    const auto rest = rest_->remaining();
    if (!rest) return std::nullopt;
    return *rest + (prefix_.size() - used_);
  }

 private:
  std::vector<uint8_t> prefix_;
  size_t used_ = 0;
  std::unique_ptr<ByteSource> rest_;
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(std::unique_ptr<ByteSource> raw, const std::string& context)
      : raw_(std::move(raw)), context_(context), input_(kChunk) {
    std::memset(&stream_, 0, sizeof(stream_));
    KEEL_CHECK(inflateInit2(&stream_, 15 + 16) == Z_OK, context_, ": zlib inflateInit2 failed");
  }
  ~GzipSource() override { inflateEnd(&stream_); }

  size_t read(uint8_t* out, size_t count) override {
    size_t produced = 0;
    while (produced < count) {
      if (stream_.avail_in == 0 && !raw_eof_) refill();
      if (member_done_) {
        if (stream_.avail_in == 0 && raw_eof_) break;  // clean end of the last member
        // Another member must start here (1f 8b); anything else is trailing garbage.
        if (stream_.avail_in < 2 && !raw_eof_) {
          refill_keep();
          continue;
        }
        if (stream_.avail_in < 2 || stream_.next_in[0] != 0x1f || stream_.next_in[1] != 0x8b) {
          uint64_t extra = stream_.avail_in;
          uint8_t scratch[4096];
          for (size_t got; (got = raw_->read(scratch, sizeof scratch)) > 0;) extra += got;
          fail(context_, ": ", extra, " bytes of trailing garbage after the gzip stream (the file "
               "is damaged or not the published one; download it again)");
        }
        KEEL_CHECK(inflateReset(&stream_) == Z_OK, context_, ": zlib inflateReset failed");
        member_done_ = false;
      }
      const size_t want = std::min<size_t>(count - produced, 1u << 30);
      stream_.next_out = out + produced;
      stream_.avail_out = static_cast<uInt>(want);
      const int status = inflate(&stream_, Z_NO_FLUSH);
      const size_t made = want - stream_.avail_out;
      produced += made;
      if (status == Z_STREAM_END) {
        member_done_ = true;
      } else if (status == Z_OK) {
        // progress was made, or more input is needed
      } else if (status == Z_BUF_ERROR) {
        // No progress possible: inflate needs input and there is none left.
        KEEL_CHECK(!(stream_.avail_in == 0 && raw_eof_), context_,
                   ": truncated gzip stream (the compressed data ends early; download the file again)");
      } else {
        fail(context_, ": corrupt gzip data (", stream_.msg ? stream_.msg : zError(status),
             "); download the file again");
      }
      if (status != Z_STREAM_END && made == 0 && stream_.avail_in == 0 && raw_eof_)
        fail(context_, ": truncated gzip stream (the compressed data ends early; download the file again)");
    }
    return produced;
  }
  std::optional<uint64_t> remaining() const override { return std::nullopt; }

 private:
  static constexpr size_t kChunk = 1 << 16;
  void refill() {
    const size_t got = raw_->read(input_.data(), input_.size());
    if (got == 0) raw_eof_ = true;
    stream_.next_in = input_.data();
    stream_.avail_in = static_cast<uInt>(got);
  }
  // Appends more input after the unread bytes (needed to see a 2-byte magic split by a chunk).
  void refill_keep() {
    const size_t keep = stream_.avail_in;
    std::memmove(input_.data(), stream_.next_in, keep);
    const size_t got = raw_->read(input_.data() + keep, input_.size() - keep);
    if (got == 0) raw_eof_ = true;
    stream_.next_in = input_.data();
    stream_.avail_in = static_cast<uInt>(keep + got);
  }

  std::unique_ptr<ByteSource> raw_;
  std::string context_;
  std::vector<uint8_t> input_;
  z_stream stream_;
  bool raw_eof_ = false, member_done_ = false;
};

std::unique_ptr<ByteSource> maybe_gunzip(std::unique_ptr<ByteSource> raw, const std::string& context) {
  std::vector<uint8_t> magic(2);
  magic.resize(raw->read(magic.data(), 2));
  const bool gzip = magic.size() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  auto source = std::make_unique<PrefixedSource>(std::move(magic), std::move(raw));
  if (!gzip) return source;
  return std::make_unique<GzipSource>(std::move(source), context);
}

}  // namespace

std::unique_ptr<ByteSource> open_file(const std::string& path, const std::string& context) {
  return maybe_gunzip(std::make_unique<FileSource>(path, context), context);
}

std::unique_ptr<ByteSource> open_memory(const uint8_t* data, size_t size, const std::string& context) {
  return maybe_gunzip(std::make_unique<MemorySource>(data, size), context);
}

void read_exact(ByteSource& source, uint8_t* out, size_t count, const std::string& context,
                const char* what) {
  const size_t got = source.read(out, count);
  KEEL_CHECK(got == count, context, ": ", what, " ends early: ", got, " of ", count,
             " bytes present (the file is truncated)");
}

}  // namespace keel::data::detail
