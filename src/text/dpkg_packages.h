// What dpkg knows about installed Debian packages, read from its database under a root folder (tests pass a
// fake tree): versions for the corpus manifest and the files a package installed, so a corpus source reads
// exactly its package's files and not whatever else happens to share the folder on this machine.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace hsa::data {

// package -> version for every package whose status is "install ok installed" in <root>/var/lib/dpkg/status
// (a missing status file gives an empty map).
std::map<std::string, std::string> installed_package_versions(const std::filesystem::path& root);

// The regular files the package installed (from <root>/var/lib/dpkg/info/<package>.list or
// <package>:<arch>.list), as paths under root, sorted; empty when the package is not installed.
std::vector<std::filesystem::path> package_files(const std::filesystem::path& root, const std::string& package);

}  // namespace hsa::data
