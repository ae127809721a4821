#include "text/dpkg_packages.h"

#include <algorithm>
#include <fstream>

namespace hsa::data {
namespace fs = std::filesystem;

std::map<std::string, std::string> installed_package_versions(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::ifstream in(root / "var/lib/dpkg/status");
  std::string line, package, version;
  bool installed = false;
  auto end_record = [&] {
    if (installed && !package.empty()) out[package] = version;
    package.clear(), version.clear(), installed = false;
  };
  while (std::getline(in, line)) {
    if (line.empty()) end_record();
    else if (line.rfind("Package: ", 0) == 0) package = line.substr(9);
    else if (line.rfind("Version: ", 0) == 0) version = line.substr(9);
    else if (line.rfind("Status: ", 0) == 0) installed = line.find("install ok installed") != std::string::npos;
  }
  end_record();
  return out;
}

std::vector<fs::path> package_files(const fs::path& root, const std::string& package) {
  const fs::path info = root / "var/lib/dpkg/info";
  fs::path list = info / (package + ".list");
  std::error_code ec;
  if (!fs::exists(list, ec)) {
    list.clear();
    for (const fs::directory_entry& e : fs::directory_iterator(info, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(package + ":", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".list") {
        list = e.path();
        break;
      }
    }
    if (list.empty()) return {};
  }
  std::vector<fs::path> out;
  std::ifstream in(list);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '/') continue;
    fs::path p = root / line.substr(1);
    if (fs::is_regular_file(p, ec) && !fs::is_symlink(p, ec)) out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hsa::data
