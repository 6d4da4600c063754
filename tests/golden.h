// Reads the golden outputs from the models folder's README.md (the indented text blocks that follow
// "From BOS alone" and "With the prompt `Once upon a time`"), so tests compare against the published text.
#pragma once
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace lime::test {

// Indented (4-space) blocks of README.md in order, each joined with '\n'.
inline std::vector<std::string> readme_golden_blocks(const std::string& models_dir) {
  std::ifstream in(models_dir + "/README.md");
  std::vector<std::string> blocks;
  std::string line, cur;
  bool in_block = false;
  while (std::getline(in, line)) {
    if (line.rfind("    ", 0) == 0) {
      cur += (in_block ? "\n" : "") + line.substr(4);
      in_block = true;
    } else if (in_block) {
      blocks.push_back(cur);
      cur.clear();
      in_block = false;
    }
  }
  if (in_block) blocks.push_back(cur);
  return blocks;
}

}  // namespace lime::test
