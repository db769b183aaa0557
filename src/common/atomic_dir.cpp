#include "common/atomic_dir.h"

#include <fcntl.h>  // AT_FDCWD
#include <cerrno>
#include <cstdio>   // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace fs = std::filesystem;

namespace rlhf {

void replace_dir(const std::string& tmp, const std::string& target,
                 const std::function<void(const std::string& old)>& before_remove) {
  if (!fs::exists(target)) {
    RLHF_CHECK(std::rename(tmp.c_str(), target.c_str()) == 0, target, ": cannot rename ", tmp, " to it (",
               std::strerror(errno), ")");
    return;
  }
  std::string old = tmp;  // after the exchange the old folder sits where tmp was
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
    RLHF_CHECK(errno == EINVAL || errno == ENOSYS || errno == ENOTSUP, target, ": cannot exchange it with ", tmp,
               " (", std::strerror(errno), ")");
    old = tmp + ".old";
    std::error_code ec;
    fs::remove_all(old, ec);
    RLHF_CHECK(std::rename(target.c_str(), old.c_str()) == 0, target, ": cannot move it aside to ", old, " (",
               std::strerror(errno), ")");
    RLHF_CHECK(std::rename(tmp.c_str(), target.c_str()) == 0, target, ": cannot rename ", tmp, " to it (",
               std::strerror(errno), "); the previous folder is in ", old);
  }
  if (before_remove) before_remove(old);
  fs::remove_all(old);
}

void remove_temp_dir(const std::string& tmp) noexcept {
  std::error_code ec;
  fs::remove_all(tmp, ec);
}

}  // namespace rlhf
