/* Transitional: moved to src/base/json.h (internal, not for front ends). Kept only so that
 * the branches in flight keep building; include "base/json.h" instead. */
#include "base/json.h"
