// Replacing a folder in one step: how model folders and checkpoints are saved (write everything into a temporary
// sibling, then swap it in), so that neither a crash nor a concurrent reader ever meets a half-written folder.
#pragma once
#include <functional>
#include <string>

namespace rlhf {

// Puts the finished folder `tmp` at `target`. When `target` exists, the two are exchanged in one step
// (renameat2 RENAME_EXCHANGE): a reader of `target`, or a process killed at any instant, sees the old folder or the
// new one, never neither. Then `before_remove(old)` runs on the old folder (e.g. to move over entries the new one
// lacks) and the old folder is removed. Where the filesystem cannot exchange (EINVAL: some network and FUSE
// filesystems), two renames, with a moment in between where `target` is absent.
// Errors name both paths and the system's reason.
void replace_dir(const std::string& tmp, const std::string& target,
                 const std::function<void(const std::string& old)>& before_remove = nullptr);

// Removes `tmp` (a temporary folder of a write that failed) and never throws: the caller rethrows the failure.
void remove_temp_dir(const std::string& tmp) noexcept;

}  // namespace rlhf
