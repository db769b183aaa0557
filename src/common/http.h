// cpp-httplib, included the way Debian's libcpp-httplib.so was built: its header declares classes whose layout
// depends on these switches, so every translation unit must agree with the library (see cpp-httplib.pc, Cflags).
// Link with -lcpp-httplib.
#pragma once
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>
