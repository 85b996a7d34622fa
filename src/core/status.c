/*
 * status.c - status names and the error-message helpers behind GLMQ_FAIL_IF.
 *
 * The first failure writes err->msg; forwarders may prefix context. Messages are lower case, no
 * trailing period, with quoted subjects (git style), and name file, tensor and byte offset.
 */
#include "ggml_type.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

const char *glmq_status_str(glmq_status st)
{
    switch (st) {
    case GLMQ_OK: return "ok";
    case GLMQ_E_INVALID: return "invalid argument";
    case GLMQ_E_NOMEM: return "out of memory";
    case GLMQ_E_IO: return "i/o error";
    case GLMQ_E_FORMAT: return "format error";
    case GLMQ_E_UNSUPPORTED: return "unsupported";
    case GLMQ_E_SHAPE: return "shape mismatch";
    case GLMQ_E_CHECKSUM: return "checksum mismatch";
    case GLMQ_E_INTERNAL: return "internal error";
    case GLMQ_E_VALUE: return "bad value";
    }
    return "unknown status";
}

glmq_status glmq_fail(glmq_err *err, glmq_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

glmq_status glmq_err_prefix(glmq_err *err, glmq_status code, const char *fmt, ...)
{
    if (!err) return code;
    char pre[GLMQ_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    if (n < 0) return err->code;
    size_t pl = (size_t)n < sizeof pre ? (size_t)n : sizeof pre - 1;
    size_t ol = strnlen(err->msg, sizeof err->msg - 1);
    if (pl + ol > sizeof err->msg - 1) ol = sizeof err->msg - 1 - pl; /* keep the prefix */
    memmove(err->msg + pl, err->msg, ol);
    memcpy(err->msg, pre, pl);
    err->msg[pl + ol] = 0;
    if (err->code == GLMQ_OK) err->code = code;
    return err->code;
}

const char *glmq_type_name(glmq_type t)
{
    switch (t) {
    case GLMQ_TYPE_F32: return "f32";
    case GLMQ_TYPE_F16: return "f16";
    case GLMQ_TYPE_BF16: return "bf16";
    case GLMQ_TYPE_INT8: return "int8";
    case GLMQ_TYPE_INT4: return "int4";
    case GLMQ_TYPE_INT8_G32: return "int8g32";
    case GLMQ_TYPE_INT8_G64: return "int8g64";
    case GLMQ_TYPE_INT8_G128: return "int8g128";
    case GLMQ_TYPE_INT4_G32: return "int4g32";
    case GLMQ_TYPE_INT4_G64: return "int4g64";
    case GLMQ_TYPE_INT4_G128: return "int4g128";
    case GLMQ_TYPE_GGML: break;
    }
    if (t > GLMQ_TYPE_GGML) {
        const glmq_ggml_type_info *g = glmq_ggml_type_get((uint32_t)(t - GLMQ_TYPE_GGML));
        return g ? g->name : NULL;
    }
    return NULL;
}

size_t glmq_type_elem_size(glmq_type t)
{
    switch (t) {
    case GLMQ_TYPE_F32: return 4;
    case GLMQ_TYPE_F16:
    case GLMQ_TYPE_BF16: return 2;
    default: return 0;
    }
}

char *glmq_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

glmq_status glmq_sticky_get(const glmq_sticky *s, glmq_err *err)
{
    if (s->code == GLMQ_OK) return GLMQ_OK;
    if (err) *err = s->err;
    return s->code;
}

glmq_status glmq_sticky_set(glmq_sticky *s, glmq_err *err, glmq_status code, const char *fmt, ...)
{
    if (s->code == GLMQ_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err.msg, sizeof s->err.msg, fmt, ap);
        va_end(ap);
        s->err.code = code;
        s->code = code;
    }
    return glmq_sticky_get(s, err);
}

glmq_status glmq_sticky_keep(glmq_sticky *s, glmq_status st, const glmq_err *e, glmq_err *err)
{
    if (st == GLMQ_OK) return GLMQ_OK;
    if (s->code == GLMQ_OK) {
        s->err = *e;
        s->err.code = st;
        s->code = st;
    }
    return glmq_sticky_get(s, err);
}
