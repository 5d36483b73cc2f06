#pragma once
// Portability macros shared by host and device code.

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KEEL_HOST_DEVICE __host__ __device__
#define KEEL_DEVICE_CODE 1
#else
#define KEEL_HOST_DEVICE
#endif

#define KEEL_INLINE inline __attribute__((always_inline))
