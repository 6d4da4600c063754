# Cross toolchain for aarch64 Linux with Debian's cross compiler and multiarch (arm64) libraries in
# /usr/lib/aarch64-linux-gnu. Test executables run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The cross libc lives under /usr/aarch64-linux-gnu; multiarch packages (libfoo-dev:arm64) under /usr with the
# aarch64-linux-gnu library directory, which CMAKE_LIBRARY_ARCHITECTURE selects. Programs come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
# Extra roots holding arm64 packages that cannot be co-installed through multiarch (Debian's CAF packages are not
# Multi-Arch: same): scripts/test-arm64 unpacks them under the build directory and passes the folder here.
if(NOT LIME_ARM64_EXTRA_ROOT AND EXISTS "${CMAKE_BINARY_DIR}/deps-root")
  set(LIME_ARM64_EXTRA_ROOT "${CMAKE_BINARY_DIR}/deps-root")
endif()
if(LIME_ARM64_EXTRA_ROOT)
  list(APPEND CMAKE_FIND_ROOT_PATH ${LIME_ARM64_EXTRA_ROOT})
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must see only the arm64 .pc files (never the host's x86-64 ones).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# gtest_discover_tests and ctest run the test executables through qemu. With Debian's multiarch libc6:arm64 (pulled
# in by the arm64 -dev packages) qemu needs no prefix: /lib/ld-linux-aarch64.so.1 and the libraries come from the
# same glibc build. Mixing the cross package's older ld.so (-L /usr/aarch64-linux-gnu) with the multiarch libc.so
# hangs at the first pthread_create, so the cross prefix is only a fallback.
find_program(LIME_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(LIME_QEMU_AARCH64)
  if(EXISTS /lib/ld-linux-aarch64.so.1)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${LIME_QEMU_AARCH64})
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR ${LIME_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
  endif()
endif()
