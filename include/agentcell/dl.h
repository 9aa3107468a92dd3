/* Transitional: moved to src/base/dl.h (internal, not for front ends). Kept only so that
 * the branches in flight keep building; include "base/dl.h" instead. */
#include "base/dl.h"
