/*
 * tensor_types.h - the storage type of each tensor a conversion writes (internal): the recipe
 * (--type, --group, --quantize-embedding/-output) and the per-tensor rules of --tensor-type.
 *
 * A rule is "REGEX=TYPE" with TYPE int4, int8 or f16, optionally ":g32", ":g64" or ":g128" after
 * int4/int8 (or a type name such as int4g32). REGEX is a POSIX extended regular expression
 * searched in the tensor's checkpoint name (anchor it with ^ and $ to match whole names). Rules
 * apply to 2-D weights only (norms and biases are never quantized); the first rule that
 * matches a tensor decides its type, whatever the recipe says (a rule may quantize the
 * embedding or keep a layer weight in 16 bits). "f16" keeps a 16-bit source as stored and
 * narrows F32 to F16, as --type f16 does.
 */
#ifndef GLMQ_CONVERT_TENSOR_TYPES_H
#define GLMQ_CONVERT_TENSOR_TYPES_H

#include "core/internal.h"
#include "formats/glm_tensors.h"
#include "formats/source.h"
#include "glmq.h"

typedef struct glmq_ttypes glmq_ttypes;

/* Compile o->tensor_types (n_tensor_types rules). GLMQ_E_INVALID naming the rule for a bad
 * form, type or regular expression. *out is NULL when there are no rules. */
glmq_status glmq_ttypes_compile(const glmq_convert_opts *o, glmq_ttypes **out, glmq_err *err);
void glmq_ttypes_free(glmq_ttypes *tt); /* NULL-safe */

/* The type the first rule matching tensor `name` gives it (INT4, INT8, a group-wise type or F16),
 * marking the rule used: 1 and *type; 0 when no rule applies. */
int glmq_ttypes_rule(glmq_ttypes *tt, const char *name, int ndim, glmq_quant_rule rule,
                     glmq_type *type);

/* The storage type of tensor `name` (ndim dims, stored as src, the table's rule): the first
 * matching rule (which is then marked used), else the recipe. */
glmq_type glmq_ttypes_choose(glmq_ttypes *tt, const glmq_convert_opts *o, const char *name,
                             int ndim, glmq_quant_rule rule, glmq_dtype src);

/* GLMQ_E_INVALID naming the first rule that matched no tensor (a typo would otherwise be
 * silent), else GLMQ_OK. */
glmq_status glmq_ttypes_check_used(const glmq_ttypes *tt, glmq_err *err);

/* The rules as given, in order, for the metadata (a JSON array of strings), or NULL. */
struct cJSON *glmq_ttypes_json(const glmq_ttypes *tt);

#endif /* GLMQ_CONVERT_TENSOR_TYPES_H */
