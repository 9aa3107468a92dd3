/* Transitional: the helpers that lived here are internal and now have one header per
 * module in src/base/ (util.h: cleanup attributes; io.h, parse.h, time.h, utf8.h, base64.h,
 * proctitle.h, uuid.h, walk.h). Kept only so that the branches in flight keep building;
 * include what a file uses from base/ instead. */
#include "base/base64.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/proctitle.h"
#include "base/time.h"
#include "base/utf8.h"
#include "base/util.h"
#include "base/uuid.h"
