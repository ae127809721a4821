// Saved inference states (`hsa generate --save-state/--load-state`, the server's slot files): a SavedState
// (session.h) in one file, with the fingerprint of the model and tokenizer that computed it.
//
// Layout (version 1, little-endian): "HSASTATE", u32 version, u32 header length, u64 file length, the JSON
// header (hash algorithm, model fingerprint, tokenizer, dtype, position, and per tensor its name, dtype, shape and
// offset), tensor bytes at 64-byte aligned offsets, and a trailing u64 hash of everything before it. Written
// atomically (util/file_util.h); loaded with one read, the tensors viewing the bytes read (no per-tensor copy on
// the cpu). A file that is truncated, corrupt, of another version, or from another model is refused with an
// error naming the file.
#pragma once
#include "infer/session.h"
#include "model/checkpoint.h"

#include <string>

namespace hsa {

// Identifies the weights and tokenizer a state belongs to: a hash of the config, every parameter's name, dtype,
// shape and bytes as stored in the checkpoint, and the tokenizer's name, in the hash_algorithm() of the build.
struct ModelFingerprint {
  std::string hash;       // hex
  std::string tokenizer;  // Tokenizer::name()
};
ModelFingerprint model_fingerprint(const Checkpoint& checkpoint, const std::string& tokenizer_name);

void save_state_file(const std::string& path, const SavedState& saved, const ModelFingerprint& model);
// Tensors go to `model`'s device and must have its dtype. The chunk memory (the bulk of a long state) goes to
// `memory_device` instead: the cpu keeps it in host memory, and Session::restore copies it where the model runs
// (into the session's tiers) a slice at a time, so a state larger than the device's free memory can be loaded.
SavedState load_state_file(const std::string& path, const ModelFingerprint& fingerprint, const Model& model);
SavedState load_state_file(const std::string& path, const ModelFingerprint& fingerprint, const Model& model,
                           Device memory_device);

// The positions (tokens) a state file holds, from its header alone, without reading its tensors: what a run plans
// its memory for before loading it. Only the header is checked here; load_state_file checks the rest.
int64_t state_file_positions(const std::string& path);

}  // namespace hsa
