# CMake toolchain: cross-compile glmq for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu and
# the arm64 -dev packages of the dependencies (multiarch), tests run under qemu-user
# (tests/cross/run-arm64.sh sets this up).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# multiarch: the arm64 libraries are in /usr/lib/aarch64-linux-gnu, the headers shared in /usr/include
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu)
# pkg-config: the arm64 .pc files of multiarch, not the host's
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# ctest runs every test binary through qemu; -L finds the arm64 loader and libraries
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
