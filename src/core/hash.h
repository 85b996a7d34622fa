/*
 * hash.h - XXH3-64 for glmq (internal). On x86-64 the Debian libxxhash exports runtime-dispatched
 * XXH3 entry points (SSE2/AVX2/AVX-512 chosen by CPUID); xxh_x86dispatch.h maps the plain names
 * onto them, which more than doubles hashing speed over the baseline build. The digest is the
 * same on every path, so files hash identically on every machine.
 */
#ifndef GLMQ_HASH_H
#define GLMQ_HASH_H

#include <xxhash.h>
#if defined(GLMQ_HAVE_X86) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#endif
