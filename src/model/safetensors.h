// safetensors files: 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32"|"BF16"|"I32"|"F64", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value"}}, then the data buffer (offsets are relative to its start).
// Writes are atomic; reads memory-map the file and hand out tensors that view the mapping.
#pragma once
#include "model/param_spec.h"

#include <hsa/tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hsa {

// Tensors may live anywhere and be strided; they are written contiguous, in row-major order. The header is
// padded to 8 bytes and the data laid out widest dtype first, so every tensor of a file we write is aligned.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The exact size of the file save_safetensors would write (for packing shards under a size limit).
uint64_t safetensors_file_bytes(const std::map<std::string, Tensor>& tensors,
                                const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU views of a private (copy-on-write) mapping of the file
  std::map<std::string, std::string> metadata;
};
// Every malformation (truncation, bad header, unknown dtype, offsets out of range or not matching the
// shape) is an hsa::Error naming the file and the problem. A tensor whose data is not aligned for its
// dtype (possible in files written by other tools) is copied instead of viewed.
SafetensorsFile load_safetensors(const std::string& path);

// Throws one hsa::Error listing every missing, unexpected, mis-shaped and mis-typed tensor by name.
void check_tensors_match(const std::map<std::string, Tensor>& loaded, const std::vector<ParamSpec>& expected,
                         DType dtype);

}  // namespace hsa
