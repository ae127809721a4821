// Element types and devices. bf16 is storage only on the CPU: arithmetic happens in f32.
// f64 exists for the CPU reference in gradient checks.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace hsa {

enum class DType : uint8_t { f32, bf16, i32, f64 };
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::string_view device_name(Device device);
DType parse_dtype(std::string_view name);    // "f32" | "bf16" | "i32" | "f64"; throws otherwise
Device parse_device(std::string_view name);  // "cpu" | "cuda"; throws otherwise
bool is_floating(DType dtype);

// Brain float 16: the top half of an IEEE f32. Conversion rounds to nearest even; NaN stays NaN.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float value) : bits(from_float(value)) {}
  explicit operator float() const { return to_float(bits); }

  static uint16_t from_float(float value) {
    uint32_t u;
    std::memcpy(&u, &value, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }
  static float to_float(uint16_t bits) {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &u, 4);
    return value;
  }
};

// Maps a C++ element type to its DType, for typed access checks.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };

}  // namespace hsa
