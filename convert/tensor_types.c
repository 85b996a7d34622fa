/*
 * tensor_types.c - see tensor_types.h.
 */
#include "convert/tensor_types.h"
#include "formats/layout.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *text; /* the rule as given */
    regex_t re;
    glmq_type type;
    int used;
} tt_rule;

struct glmq_ttypes {
    tt_rule *r;
    int n;
};

void glmq_ttypes_free(glmq_ttypes *tt)
{
    if (!tt) return;
    for (int i = 0; i < tt->n; i++) {
        regfree(&tt->r[i].re);
        free(tt->r[i].text);
    }
    free(tt->r);
    free(tt);
}

/* "int4", "int8", "f16", "int4:g32" ... or a type name "int4g32": the type, or -1. */
static int parse_type(const char *s)
{
    static const struct {
        const char *name;
        glmq_type type;
    } names[] = {
        {"int4", GLMQ_TYPE_INT4},          {"int8", GLMQ_TYPE_INT8},
        {"f16", GLMQ_TYPE_F16},            {"int4:g32", GLMQ_TYPE_INT4_G32},
        {"int4:g64", GLMQ_TYPE_INT4_G64},  {"int4:g128", GLMQ_TYPE_INT4_G128},
        {"int8:g32", GLMQ_TYPE_INT8_G32},  {"int8:g64", GLMQ_TYPE_INT8_G64},
        {"int8:g128", GLMQ_TYPE_INT8_G128},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcmp(s, names[i].name)) return (int)names[i].type;
        if (glmq_type_group(names[i].type) && !strcmp(s, glmq_type_name(names[i].type)))
            return (int)names[i].type;
    }
    return -1;
}

glmq_status glmq_ttypes_compile(const glmq_convert_opts *o, glmq_ttypes **out, glmq_err *err)
{
    *out = NULL;
    if (o->n_tensor_types <= 0) return GLMQ_OK;
    GLMQ_FAIL_IF(!o->tensor_types, err, GLMQ_E_INVALID, "tensor types: NULL rule list");
    glmq_ttypes *tt = calloc(1, sizeof *tt);
    if (tt) tt->r = calloc((size_t)o->n_tensor_types, sizeof *tt->r);
    if (!tt || !tt->r) {
        glmq_ttypes_free(tt);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < o->n_tensor_types; i++) {
        const char *s = o->tensor_types[i], *eq = s ? strrchr(s, '=') : NULL;
        const int type = eq ? parse_type(eq + 1) : -1;
        if (!eq || eq == s || type < 0) {
            glmq_ttypes_free(tt);
            return glmq_fail(err, GLMQ_E_INVALID,
                             "--tensor-type '%s': expected REGEX=TYPE with TYPE int4, int8 or "
                             "f16, optionally :g32, :g64 or :g128 after int4/int8",
                             s ? s : "(null)");
        }
        tt_rule *r = &tt->r[i];
        r->text = glmq_strdup(s);
        char *pat = r->text ? glmq_strdup(s) : NULL;
        if (!pat) {
            glmq_ttypes_free(tt);
            return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
        }
        pat[eq - s] = 0;
        const int rc = regcomp(&r->re, pat, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &r->re, why, sizeof why);
            free(pat);
            tt->n = i; /* r->re is not compiled */
            free(r->text);
            glmq_ttypes_free(tt);
            return glmq_fail(err, GLMQ_E_INVALID, "--tensor-type '%s': bad regular expression: %s",
                             s, why);
        }
        free(pat);
        r->type = (glmq_type)type;
        tt->n = i + 1;
    }
    *out = tt;
    return GLMQ_OK;
}

static glmq_type stored_type(glmq_dtype d)
{
    return d == GLMQ_DT_F16 ? GLMQ_TYPE_F16 : d == GLMQ_DT_BF16 ? GLMQ_TYPE_BF16 : GLMQ_TYPE_F32;
}

/* A quantized type, or F16: what the conversion stores for it from a source of dtype src. */
static glmq_type stored_as(glmq_type want, glmq_dtype src)
{
    if (want == GLMQ_TYPE_F16) return src == GLMQ_DT_F32 ? GLMQ_TYPE_F16 : stored_type(src);
    return want;
}

int glmq_ttypes_rule(glmq_ttypes *tt, const char *name, int ndim, glmq_quant_rule rule,
                     glmq_type *type)
{
    if (tt && ndim == 2 && rule != GLMQ_QUANT_NEVER)
        for (int i = 0; i < tt->n; i++)
            if (regexec(&tt->r[i].re, name, 0, NULL, 0) == 0) {
                tt->r[i].used = 1;
                *type = tt->r[i].type;
                return 1;
            }
    return 0;
}

glmq_type glmq_ttypes_choose(glmq_ttypes *tt, const glmq_convert_opts *o, const char *name,
                             int ndim, glmq_quant_rule rule, glmq_dtype src)
{
    glmq_type t;
    if (glmq_ttypes_rule(tt, name, ndim, rule, &t)) return stored_as(t, src);
    const int quantize = rule == GLMQ_QUANT_DEFAULT ||
                         (rule == GLMQ_QUANT_IF_EMBEDDING && o->quantize_embedding) ||
                         (rule == GLMQ_QUANT_IF_OUTPUT && o->quantize_output);
    if (!quantize) return stored_type(src);
    if (o->weight_type == GLMQ_TYPE_F16) return stored_as(GLMQ_TYPE_F16, src);
    return (glmq_type)glmq_type_grouped(o->weight_type, o->group);
}

glmq_status glmq_ttypes_check_used(const glmq_ttypes *tt, glmq_err *err)
{
    for (int i = 0; tt && i < tt->n; i++)
        GLMQ_FAIL_IF(!tt->r[i].used, err, GLMQ_E_INVALID,
                     "--tensor-type '%s' matches no 2-D weight of the checkpoint", tt->r[i].text);
    return GLMQ_OK;
}

cJSON *glmq_ttypes_json(const glmq_ttypes *tt)
{
    if (!tt) return NULL;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < tt->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(tt->r[i].text));
    return a;
}

int glmq_convert_rule_matches(const glmq_convert_opts *o, const char *name)
{
    glmq_ttypes *tt = NULL;
    glmq_type t;
    if (glmq_ttypes_compile(o, &tt, NULL) != GLMQ_OK) return -1;
    const int m = glmq_ttypes_rule(tt, name, 2, GLMQ_QUANT_DEFAULT, &t);
    glmq_ttypes_free(tt);
    return m;
}
