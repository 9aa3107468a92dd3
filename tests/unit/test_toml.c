/* Unit tests for src/base/toml.c: the accepted subset, its JSON mapping, and that every
 * refusal names the right line and column.
 *
 * Over 800 lines on purpose: one test binary per module, made of independent cases that
 * share a few helpers; split, each part would only repeat the helpers and the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agentcell/config.h"
#include "base/toml.h"
#include "base/io.h"
#include "base/util.h"

/* ---- helpers ---- */

static json_t *parse_ok(const char *toml, size_t len)
{
	json_t *j = NULL;
	ac_error_t *err = NULL;
	if (ac_toml_parse(toml, len, "t.toml", &j, &err) < 0) {
		char msg[1100];
		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "(no error)");
		ac_error_free(err);
		fail_msg("refused: %s\n--- input:\n%.*s", msg, (int)len, toml);
	}
	assert_null(err);
	assert_true(json_is_object(j));
	return j;
}

static void expect_json_n(const char *toml, size_t len, const char *want, size_t flags)
{
	json_t *j = parse_ok(toml, len);
	char *got = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | flags);
	json_decref(j);
	assert_non_null(got);
	if (strcmp(got, want) != 0) {
		print_error("input:\n%.*s\ngot:  %s\nwant: %s\n", (int)len, toml, got, want);
		free(got);
		fail();
	}
	free(got);
}

/* at is "LINE:COL"; the message must be "t.toml:LINE:COL: ..." and contain what. */
static void expect_error_n(const char *toml, size_t len, const char *at, const char *what)
{
	json_t *j = NULL;
	ac_error_t *err = NULL;
	if (ac_toml_parse(toml, len, "t.toml", &j, &err) == 0) {
		char *got = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
		print_error("input:\n%.*s\nparsed to %s, wanted an error at %s: %s\n", (int)len,
			    toml, got, at, what);
		free(got);
		json_decref(j);
		fail();
	}
	assert_null(j);
	assert_non_null(err);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "t.toml:%s: ", at);
	bool ok = strncmp(err->msg, prefix, strlen(prefix)) == 0 && strstr(err->msg, what) != NULL;
	if (!ok) {
		print_error("input:\n%.*s\ngot:  %s\nwant: %s... %s\n", (int)len, toml, err->msg,
			    prefix, what);
		ac_error_free(err);
		fail();
	}
	assert_null(strchr(err->msg, '\n'));
	ac_error_free(err);
}

#define OK(toml, want)	      expect_json_n(toml, sizeof(toml) - 1, want, 0)
#define OK_ASCII(toml, want)  expect_json_n(toml, sizeof(toml) - 1, want, JSON_ENSURE_ASCII)
#define ERR(toml, at, what)   expect_error_n(toml, sizeof(toml) - 1, at, what)
#define ERR_S(toml, at, what) expect_error_n(toml, strlen(toml), at, what)

static double parse_real(const char *value)
{
	char doc[256];
	snprintf(doc, sizeof(doc), "x = %s\n", value);
	json_t *j = parse_ok(doc, strlen(doc));
	json_t *x = json_object_get(j, "x");
	if (!json_is_real(x))
		fail_msg("'%s' is not a float", value);
	double d = json_real_value(x);
	json_decref(j);
	return d;
}

static json_int_t parse_int(const char *value)
{
	char doc[256];
	snprintf(doc, sizeof(doc), "x = %s\n", value);
	json_t *j = parse_ok(doc, strlen(doc));
	json_t *x = json_object_get(j, "x");
	if (!json_is_integer(x))
		fail_msg("'%s' is not an integer", value);
	json_int_t v = json_integer_value(x);
	json_decref(j);
	return v;
}

/* ---- a whole config ---- */

static void test_agentkernel_config(void **state)
{
	OK("# agentcell.toml\n"
	   "[sandbox]\n"
	   "name = \"my-project\"\n"
	   "runtime = \"python\"\n"
	   "\n"
	   "[resources]\n"
	   "vcpus = 2\n"
	   "memory_mb = 1024\n"
	   "\n"
	   "[security]\n"
	   "profile = \"moderate\"\n"
	   "network = false\n"
	   "mount_cwd = true\n"
	   "\n"
	   "[security.commands]\n"
	   "allow = [\"git\", \"make\"]\n"
	   "block = [\"curl\", 'wget']\n"
	   "allowlist_only = false\n"
	   "\n"
	   "[[files]]\n"
	   "host = \"./a.txt\"\n"
	   "sandbox = \"/workspace/a.txt\"\n"
	   "[[files]]\n"
	   "host = \"./b\"\n"
	   "sandbox = \"/b\"\n"
	   "\n"
	   "[api]\n"
	   "api_key_env = \"MY_KEY\"\n",
	   "{\"api\":{\"api_key_env\":\"MY_KEY\"},"
	   "\"files\":[{\"host\":\"./a.txt\",\"sandbox\":\"/workspace/a.txt\"},"
	   "{\"host\":\"./b\",\"sandbox\":\"/b\"}],"
	   "\"resources\":{\"memory_mb\":1024,\"vcpus\":2},"
	   "\"sandbox\":{\"name\":\"my-project\",\"runtime\":\"python\"},"
	   "\"security\":{\"commands\":{\"allow\":[\"git\",\"make\"],\"allowlist_only\":false,"
	   "\"block\":[\"curl\",\"wget\"]},\"mount_cwd\":true,\"network\":false,"
	   "\"profile\":\"moderate\"}}");
}

static void test_empty_and_comments(void **state)
{
	OK("", "{}");
	OK("\n\n   \n\t\n", "{}");
	OK("# only a comment", "{}");
	OK("# c1\n  # c2\t with tab\n", "{}");
	OK("a = 1 # trailing\nb = 2#tight\n", "{\"a\":1,\"b\":2}");
	OK("[t] # comment after header\nx = 1", "{\"t\":{\"x\":1}}");
	/* CRLF line endings and a byte order mark. */
	OK("\xef\xbb\xbf"
	   "a = 1\r\n[t]\r\nb = 'x'\r\n",
	   "{\"a\":1,\"t\":{\"b\":\"x\"}}");
	/* The BOM does not count as a column. */
	ERR("\xef\xbb\xbf"
	    "a = ?",
	    "1:5", "expected a value, found '?'");
	/* NULL text with length 0 is an empty document. */
	json_t *j = NULL;
	assert_int_equal(ac_toml_parse(NULL, 0, NULL, &j, NULL), 0);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

/* ---- strings ---- */

static void test_basic_escapes(void **state)
{
	OK("s = \"a\\bb\\tc\\nd\\fe\\rf\\\"g\\\\h\"",
	   "{\"s\":\"a\\bb\\tc\\nd\\fe\\rf\\\"g\\\\h\"}");
	OK("s = \"tab\there\"", "{\"s\":\"tab\\there\"}"); /* a raw tab is allowed */
	OK("s = \"\"", "{\"s\":\"\"}");
	OK("s = \"# not a comment\"", "{\"s\":\"# not a comment\"}");
}

static void test_unicode_escapes(void **state)
{
	OK_ASCII("s = \"\\u00e9\\u20AC\\U0001F600\\U0010FFFF\\u007f\"",
		 "{\"s\":\"\\u00E9\\u20AC\\uD83D\\uDE00\\uDBFF\\uDFFF\x7f\"}");
	OK("s = \"caf\\u00E9 \xc3\xa9\"", "{\"s\":\"caf\xc3\xa9 \xc3\xa9\"}");
	/* \u0000 gives a JSON string with a NUL in it. */
	json_t *j = parse_ok("s = \"a\\u0000b\"", 14);
	json_t *s = json_object_get(j, "s");
	assert_int_equal(json_string_length(s), 3);
	assert_memory_equal(json_string_value(s), "a\0b", 3);
	json_decref(j);
}

static void test_invalid_escapes(void **state)
{
	ERR("s = \"a\\xb\"", "1:7", "invalid escape: backslash followed by 'x'");
	ERR("s = \"\\e\"", "1:6", "invalid escape");
	ERR("s = \"\\a\"", "1:6", "invalid escape");
	ERR("s = \"\\ \"", "1:6", "invalid escape: backslash followed by U+0020");
	ERR("s = \"\\'\"", "1:6", "invalid escape");
	ERR("s = \"\\u12\"", "1:6", "escape \\u needs 4 hex digits");
	ERR("s = \"\\U0001F60\"", "1:6", "escape \\U needs 8 hex digits");
	ERR("s = \"\\uD800\"", "1:6", "escape \\uD800 is not a Unicode scalar value");
	ERR("s = \"\\udfff\"", "1:6", "not a Unicode scalar value");
	ERR("s = \"\\U00110000\"", "1:6", "escape \\U00110000 is not a Unicode scalar value");
	ERR("s = \"\\UFFFFFFFF\"", "1:6", "not a Unicode scalar value");
	ERR("s = \"x\\", "1:5", "unterminated string");
	ERR("s = \"\"\"x\\", "1:5", "unterminated multi-line string");
	ERR("s = \"\"\"x\\  ", "1:5", "unterminated multi-line string");
}

static void test_control_characters_in_strings(void **state)
{
	ERR("s = \"a\x01"
	    "b\"",
	    "1:7", "control character U+0001 in a string (it must be escaped)");
	ERR("s = \"a\x7f\"", "1:7", "control character U+007F");
	ERR("s = 'a\x1b'", "1:7", "control character U+001B in a string");
	ERR("s = \"a\rb\"", "1:7", "control character U+000D");
	ERR("s = \"\"\"a\x01\"\"\"", "1:9", "control character U+0001");
	ERR("s = '''a\x7f'''", "1:9", "control character U+007F");
	/* A raw NUL byte is a control character too. */
	ERR("s = \"a\0\"", "1:7", "control character U+0000");
	ERR("s = 1 # \0", "1:9", "control character U+0000 in a comment");
}

static void test_literal_strings(void **state)
{
	OK("p = 'C:\\Users\\nodejs\\templates'", "{\"p\":\"C:\\\\Users\\\\nodejs\\\\templates\"}");
	OK("p = '<\\i\\c*\\s*>'", "{\"p\":\"<\\\\i\\\\c*\\\\s*>\"}");
	OK("p = ''", "{\"p\":\"\"}");
	OK("p = 'say \"hi\"\ttab'", "{\"p\":\"say \\\"hi\\\"\\ttab\"}");
}

static void test_multiline_basic(void **state)
{
	/* The newline right after the delimiter is trimmed, later ones are kept. */
	OK("s = \"\"\"\nRoses\nViolets\"\"\"", "{\"s\":\"Roses\\nViolets\"}");
	OK("s = \"\"\"\r\none\r\ntwo\r\n\"\"\"", "{\"s\":\"one\\ntwo\\n\"}");
	OK("s = \"\"\"\n\nx\"\"\"", "{\"s\":\"\\nx\"}");
	/* Line-ending backslash: eats whitespace and newlines up to the next character. */
	OK("s = \"\"\"\nThe quick \\\n\n    brown \\   \n  fox.\\\n\"\"\"",
	   "{\"s\":\"The quick brown fox.\"}");
	OK("s = \"\"\"a \\\r\n   \r\n  b\"\"\"", "{\"s\":\"a b\"}");
	/* Escapes still work; one or two quotes anywhere, even right before the end. */
	OK("s = \"\"\"tab\\t\\\"\"\"\"\"\"", "{\"s\":\"tab\\t\\\"\\\"\\\"\"}");
	OK("s = \"\"\"x \"\" y \" z\"\"\"", "{\"s\":\"x \\\"\\\" y \\\" z\"}");
	OK("s = \"\"\"\"one\"\"\"\"", "{\"s\":\"\\\"one\\\"\"}");
	OK("s = \"\"\"\"\"two\"\"\"\"\"", "{\"s\":\"\\\"\\\"two\\\"\\\"\"}");
	OK("s = \"\"\"\"\"\"", "{\"s\":\"\"}");
	/* Six quotes at the end: the sixth is text after the value. */
	ERR("s = \"\"\"a\"\"\"\"\"\"", "1:14", "unexpected '\"' after the value");
	ERR("s = \"\"\"a\\ b\"\"\"", "1:9", "invalid escape");
	ERR("s = \"\"\"a\rb\"\"\"", "1:9", "carriage return not followed by a line feed");
	ERR("s = \"\"\"a\\  \rb\"\"\"", "1:12", "carriage return not followed by a line feed");
}

static void test_multiline_literal(void **state)
{
	OK("s = '''\nfirst\n  \\n is not an escape\n'''",
	   "{\"s\":\"first\\n  \\\\n is not an escape\\n\"}");
	OK("s = '''I [dw]on't need \\d{2} apples'''",
	   "{\"s\":\"I [dw]on't need \\\\d{2} apples\"}");
	OK("s = ''''one quote'''' ", "{\"s\":\"'one quote'\"}");
	OK("s = '''''two quotes'''''", "{\"s\":\"''two quotes''\"}");
	OK("s = '''a\r\nb\\\r\n'''", "{\"s\":\"a\\nb\\\\\\n\"}");
	ERR("s = '''a\rb'''", "1:9", "carriage return not followed by a line feed");
}

static void test_unterminated_strings(void **state)
{
	ERR("a = 1\ns = \"abc", "2:5", "unterminated string");
	ERR("s = \"abc\nd = 1\"", "1:5", "unterminated string");
	ERR("s = \"abc\r\n", "1:5", "unterminated string");
	ERR("s = 'abc", "1:5", "unterminated string");
	ERR("s = 'abc\n'", "1:5", "unterminated string");
	ERR("x = 1\n\ns = \"\"\"abc\n\ndef\"\"", "3:5", "unterminated multi-line string");
	ERR("s = '''abc''", "1:5", "unterminated multi-line string");
}

/* ---- integers ---- */

static void test_decimal_integers(void **state)
{
	assert_int_equal(parse_int("0"), 0);
	assert_int_equal(parse_int("+0"), 0);
	assert_int_equal(parse_int("-0"), 0);
	assert_int_equal(parse_int("42"), 42);
	assert_int_equal(parse_int("+99"), 99);
	assert_int_equal(parse_int("-17"), -17);
	assert_int_equal(parse_int("1_000"), 1000);
	assert_int_equal(parse_int("5_349_221"), 5349221);
	assert_int_equal(parse_int("1_2_3_4_5"), 12345);
	OK("a = 1\nb = -2\nc = +3", "{\"a\":1,\"b\":-2,\"c\":3}");
}

static void test_radix_integers(void **state)
{
	assert_int_equal(parse_int("0xDEADBEEF"), 0xdeadbeef);
	assert_int_equal(parse_int("0xdeadbeef"), 0xdeadbeef);
	assert_int_equal(parse_int("0xdead_beef"), 0xdeadbeef);
	assert_int_equal(parse_int("0x00ff"), 255); /* leading zeros are fine here */
	assert_int_equal(parse_int("0x0"), 0);
	assert_int_equal(parse_int("0o01234567"), 01234567);
	assert_int_equal(parse_int("0o755"), 0755);
	assert_int_equal(parse_int("0o7_5_5"), 0755);
	assert_int_equal(parse_int("0b11010110"), 0xd6);
	assert_int_equal(parse_int("0b0000_0001"), 1);
	ERR("a = 0x", "1:7", "expected a hex digit, found end of input");
	ERR("a = 0xg", "1:7", "expected a hex digit, found 'g'");
	ERR("a = 0o8", "1:7", "expected an octal digit, found '8'");
	ERR("a = 0o78", "1:8", "unexpected '8' after the value");
	ERR("a = 0b2", "1:7", "expected a binary digit, found '2'");
	ERR("a = 0b102", "1:9", "unexpected '2' after the value");
	ERR("a = 0X1F", "1:6", "unexpected 'X' after the value");
	ERR("a = -0x1", "1:5", "hex, octal and binary integers cannot have a sign");
	ERR("a = +0o7", "1:5", "cannot have a sign");
	ERR("a = 0xffz", "1:9", "unexpected 'z'");
}

static void test_underscore_rules(void **state)
{
	ERR("a = 1__000", "1:6", "'_' must be between two digits");
	ERR("a = 1000_", "1:9", "'_' must be between two digits");
	ERR("a = _1000", "1:5", "expected a value, found '_'");
	ERR("a = 0x_1", "1:7", "expected a hex digit, found '_'");
	ERR("a = 0b1_", "1:8", "'_' must be between two digits");
	ERR("a = 1_.5", "1:6", "'_' must be between two digits");
	ERR("a = 1._5", "1:7", "expected a digit, found '_'");
	ERR("a = 1e_5", "1:7", "expected a digit, found '_'");
	ERR("a = 1.5_", "1:8", "'_' must be between two digits");
}

static void test_leading_zeros(void **state)
{
	ERR("a = 01", "1:5", "leading zeros are not allowed");
	ERR("a = -01", "1:6", "leading zeros are not allowed");
	ERR("a = +00", "1:6", "leading zeros are not allowed");
	ERR("a = 0_1", "1:5", "leading zeros are not allowed");
	ERR("a = 00.5", "1:5", "leading zeros are not allowed");
	ERR("a = 007e1", "1:5", "leading zeros are not allowed");
	/* Zeros after the point and in the exponent are fine. */
	assert_true(parse_real("0.001") == 0.001);
	assert_true(parse_real("1e007") == 1e7);
}

static void test_int64_limits(void **state)
{
	assert_true(parse_int("9223372036854775807") == INT64_MAX);
	assert_true(parse_int("-9223372036854775808") == INT64_MIN);
	assert_true(parse_int("9_223_372_036_854_775_807") == INT64_MAX);
	assert_true(parse_int("0x7FFFFFFFFFFFFFFF") == INT64_MAX);
	assert_true(parse_int("0o777777777777777777777") == INT64_MAX);
	assert_true(parse_int("0b" /* 63 ones */
			      "111111111111111111111111111111111111111111111111111111111111111") ==
		    INT64_MAX);
	ERR("a = 9223372036854775808", "1:5",
	    "integer 9223372036854775808 does not fit in 64 bits");
	ERR("a = -9223372036854775809", "1:5", "does not fit in 64 bits");
	ERR("a = 99999999999999999999999", "1:5", "does not fit in 64 bits");
	ERR("a = 0x8000000000000000", "1:5", "does not fit in 64 bits");
	ERR("a = 0o1000000000000000000000", "1:5", "does not fit in 64 bits");
	ERR("a = 0b1000000000000000000000000000000000000000000000000000000000000000", "1:5",
	    "does not fit in 64 bits");
}

/* ---- floats ---- */

static void test_floats(void **state)
{
	assert_true(parse_real("1.0") == 1.0);
	assert_true(parse_real("+1.5") == 1.5);
	assert_true(parse_real("3.1415") == 3.1415);
	assert_true(parse_real("-0.01") == -0.01);
	assert_true(parse_real("5e+22") == 5e22);
	assert_true(parse_real("1e06") == 1e6);
	assert_true(parse_real("-2E-2") == -2e-2);
	assert_true(parse_real("6.626e-34") == 6.626e-34);
	assert_true(parse_real("224_617.445_991_228") == 224617.445991228);
	assert_true(parse_real("1e1_0") == 1e10);
	assert_true(parse_real("0e0") == 0.0);
	double z = parse_real("-0.0");
	assert_true(z == 0.0 && signbit(z));
	assert_true(parse_real("+0.0") == 0.0);
	/* Below the smallest double: rounds to zero rather than failing. */
	assert_true(parse_real("1e-400") == 0.0);
	assert_true(parse_real("1.7976931348623157e308") == 1.7976931348623157e308);
	OK("f = 0.5\ng = -2.25e2", "{\"f\":0.5,\"g\":-225.0}");
}

static void test_float_errors(void **state)
{
	ERR("a = 1.", "1:7", "expected a digit, found end of input");
	ERR("a = .5", "1:5", "expected a value, found '.'");
	ERR("a = -.5", "1:6", "expected a digit, found '.'");
	ERR("a = 1.e5", "1:7", "expected a digit, found 'e'");
	ERR("a = 1e", "1:7", "expected a digit");
	ERR("a = 1e+", "1:8", "expected a digit");
	ERR("a = 1ee2", "1:7", "expected a digit, found 'e'");
	ERR("a = 1.5.3", "1:8", "unexpected '.' after the value");
	ERR("a = 1e2.5", "1:8", "unexpected '.' after the value");
	ERR("a = 1e400", "1:5", "float out of range");
	ERR("a = -1.8e308", "1:5", "float out of range");
	/* TOML allows inf and nan; JSON cannot hold them, so they are refused. */
	ERR("a = inf", "1:5", "inf and nan are not supported");
	ERR("a = +inf", "1:5", "inf and nan are not supported");
	ERR("a = -inf", "1:5", "inf and nan are not supported");
	ERR("a = nan", "1:5", "inf and nan are not supported");
	ERR("a = [1, -nan]", "1:9", "inf and nan are not supported");
}

static void test_booleans_and_bad_words(void **state)
{
	OK("t = true\nf = false", "{\"f\":false,\"t\":true}");
	ERR("t = True", "1:5", "expected a value, found 'T'");
	ERR("t = truex", "1:9", "unexpected 'x' after the value");
	ERR("t = tru", "1:5", "expected a value, found 't'");
	ERR("t = yes", "1:5", "expected a value, found 'y'");
	ERR("t = \xc3\xa9", "1:5", "expected a value, found U+00E9");
}

static void test_dates_rejected(void **state)
{
	ERR("d = 1979-05-27", "1:5", "dates and times are not supported");
	ERR("d = 1979-05-27T07:32:00Z", "1:5", "dates and times are not supported");
	ERR("\nd = 07:32:00", "2:5", "dates and times are not supported");
}

/* ---- arrays ---- */

static void test_arrays(void **state)
{
	OK("a = []", "{\"a\":[]}");
	OK("a = [ 1, 2, 3 ]", "{\"a\":[1,2,3]}");
	OK("a = [1,2,3,]", "{\"a\":[1,2,3]}");
	OK("a = [\"x\", 'y', \"\"\"z\"\"\"]", "{\"a\":[\"x\",\"y\",\"z\"]}");
	/* Mixed types are allowed in TOML 1.0. */
	OK("a = [1, 'two', 3.5, true, [4], {five = 5}]",
	   "{\"a\":[1,\"two\",3.5,true,[4],{\"five\":5}]}");
	OK("a = [[1, 2], [\"a\", \"b\"], []]", "{\"a\":[[1,2],[\"a\",\"b\"],[]]}");
	OK("a = [\n"
	   "  1, # first\n"
	   "  # a comment line\n"
	   "\n"
	   "  2\n"
	   "  , 3,\n"
	   "]\n"
	   "b = 1",
	   "{\"a\":[1,2,3],\"b\":1}");
	OK("a = [ # open\r\n 'x' ,\r\n]", "{\"a\":[\"x\"]}");
	OK("a = [\n]", "{\"a\":[]}");
	OK("a = [{x = 1}, {x = 2}]", "{\"a\":[{\"x\":1},{\"x\":2}]}");
}

static void test_array_errors(void **state)
{
	ERR("a = [1,,2]", "1:8", "expected a value, found ','");
	ERR("a = [,]", "1:6", "expected a value, found ','");
	ERR("a = [1 2]", "1:8", "expected ',' or ']' in an array, found '2'");
	ERR("a = [1,\n2", "1:5", "unterminated array");
	ERR("a = [", "1:5", "unterminated array");
	ERR("x = 0\na = [1, # c\n", "2:5", "unterminated array");
	ERR("a = [1]]", "1:8", "unexpected ']' after the value");
	ERR("a = [1, \"x\ny\"]", "1:9", "unterminated string");
}

/* ---- inline tables ---- */

static void test_inline_tables(void **state)
{
	OK("t = {}", "{\"t\":{}}");
	OK("t = { a = 1, b = \"x\" }", "{\"t\":{\"a\":1,\"b\":\"x\"}}");
	OK("t={a=1,b=2}", "{\"t\":{\"a\":1,\"b\":2}}");
	OK("p = { x = { y = { z = 1 } } }", "{\"p\":{\"x\":{\"y\":{\"z\":1}}}}");
	OK("p = { a.b = 1, a.c = 2, 'q'.\"r\" = 3 }",
	   "{\"p\":{\"a\":{\"b\":1,\"c\":2},\"q\":{\"r\":3}}}");
	/* An array value inside may span lines. */
	OK("t = { list = [\n 1,\n 2,\n], n = 3 }", "{\"t\":{\"list\":[1,2],\"n\":3}}");
	OK("[s]\nt = { a = 1 }\nu = 2", "{\"s\":{\"t\":{\"a\":1},\"u\":2}}");
}

static void test_inline_table_errors(void **state)
{
	ERR("t = { a = 1, }", "1:14", "trailing comma in an inline table");
	ERR("t = { a = 1,\n b = 2 }", "1:13", "expected a key, found end of line");
	ERR("t = { a = 1\n}", "1:12", "newline in an inline table");
	ERR("t = {\n}", "1:6", "expected a key, found end of line");
	ERR("t = { a = 1 b = 2 }", "1:13", "expected ',' or '}' in an inline table, found 'b'");
	ERR("t = { a = 1", "1:5", "unterminated inline table");
	ERR("t = { , }", "1:7", "expected a key, found ','");
	ERR("t = { a = 1, a = 2 }", "1:14", "duplicate key 'a'");
	ERR("t = { a = {b = 1}, a.c = 2 }", "1:20",
	    "cannot add keys to 'a' with dotted keys: it is an inline table");
	/* Immutable once written, both for dotted keys and headers. */
	ERR("t = { a = 1 }\nt.b = 2", "2:1",
	    "cannot add keys to 't' with dotted keys: it is an inline table");
	ERR("t = { a.b = 1 }\nt.a.c = 2", "2:1", "it is an inline table");
	ERR("t = { a = 1 }\n[t]", "2:2", "cannot define table [t]: it is already an inline table");
	ERR("t = { a = {} }\n[t.a.b]", "2:2", "cannot use 't' as a table: it is an inline table");
	ERR("t = { a = {} }\n[[t.b]]", "2:3", "cannot use 't' as a table");
}

/* ---- keys ---- */

static void test_dotted_keys(void **state)
{
	OK("a.b.c = 1", "{\"a\":{\"b\":{\"c\":1}}}");
	OK("a . b\t.  c = 1", "{\"a\":{\"b\":{\"c\":1}}}");
	OK("name = \"Orange\"\nphysical.color = \"orange\"\nphysical.shape = \"round\"\n"
	   "site.\"google.com\" = true",
	   "{\"name\":\"Orange\",\"physical\":{\"color\":\"orange\",\"shape\":\"round\"},"
	   "\"site\":{\"google.com\":true}}");
	OK("3.14159 = \"pi\"", "{\"3\":{\"14159\":\"pi\"}}");
	OK("[t]\na.b = 1\n[u]\na.b = 2", "{\"t\":{\"a\":{\"b\":1}},\"u\":{\"a\":{\"b\":2}}}");
	/* Dotted keys may add sub-tables below a header's table. */
	OK("[fruit]\napple.color = 'red'\napple.taste.sweet = true\n[fruit.apple.texture]\n"
	   "smooth = true",
	   "{\"fruit\":{\"apple\":{\"color\":\"red\",\"taste\":{\"sweet\":true},"
	   "\"texture\":{\"smooth\":true}}}}");
	ERR("a.b = 1\na.b.c = 2", "2:3",
	    "cannot add keys to 'a.b' with dotted keys: it is an integer");
	ERR("a = 'x'\na.b = 2", "2:1", "cannot add keys to 'a' with dotted keys: it is a string");
	ERR("a = [1]\na.b = 2", "2:1", "it is a static array");
	ERR("a. = 1", "1:4", "expected a key, found '='");
	ERR("a..b = 1", "1:3", "expected a key, found '.'");
	ERR(".a = 1", "1:1", "expected a key, found '.'");
}

static void test_quoted_and_bare_keys(void **state)
{
	OK("\"key with spaces\" = 1\n'lit\\eral' = 2\n\"\" = 3\n\"a.b\" = 4\n"
	   "bare-key_1 = 5\n1234 = 6\n\"\\u00e9t\xc3\xa9\" = 7\n'\"q\"' = 8",
	   "{\"\":3,\"\\\"q\\\"\":8,\"1234\":6,\"a.b\":4,\"bare-key_1\":5,"
	   "\"key with spaces\":1,\"lit\\\\eral\":2,\"\xc3\xa9t\xc3\xa9\":7}");
	OK("true = 1\nfalse = 2\ninf = 3", "{\"false\":2,\"inf\":3,\"true\":1}");
	/* A key may hold a NUL through an escape. */
	json_t *j = parse_ok("\"a\\u0000b\" = 1", 14);
	assert_non_null(json_object_getn(j, "a\0b", 3));
	json_decref(j);
	ERR("bare!key = 1", "1:5", "expected '=' after a key, found '!'");
	ERR("\xce\xbc = 1", "1:1", "expected a key, found U+03BC");
	ERR("\"\"\"k\"\"\" = 1", "1:1", "a multi-line string cannot be a key");
	ERR("'k\nx' = 1", "1:1", "unterminated string");
	ERR("\"\\q\" = 1", "1:2", "invalid escape");
}

static void test_missing_equals_and_value(void **state)
{
	ERR("key 1", "1:5", "expected '=' after a key, found '1'");
	ERR("key\n= 1", "1:4", "expected '=' after a key, found end of line");
	ERR("a = 1\nkey", "2:4", "expected '=' after a key, found end of input");
	ERR("key : 1", "1:5", "expected '=' after a key, found ':'");
	ERR("a =", "1:4", "missing value, found end of input");
	ERR("a = \n", "1:5", "missing value, found end of line");
	ERR("a = # c", "1:5", "missing value, found '#'");
	ERR("= 1", "1:1", "expected a key, found '='");
}

static void test_garbage_after_value(void **state)
{
	ERR("a = 1 2", "1:7", "unexpected '2' after the value, expected the end of the line");
	ERR("a = \"x\" y", "1:9", "unexpected 'y' after the value");
	ERR("a = true false", "1:10", "unexpected 'f' after the value");
	ERR("a = 'x''y'", "1:8", "unexpected \"'\" after the value");
	ERR("a = 1, b = 2", "1:6", "unexpected ',' after the value");
	ERR("a = {} x", "1:8", "unexpected 'x'");
}

static void test_duplicate_keys(void **state)
{
	ERR("a = 1\na = 2", "2:1", "duplicate key 'a'");
	ERR("a = 1\n\"a\" = 2", "2:1", "duplicate key 'a'");
	ERR("a = 1\n'a' = 2", "2:1", "duplicate key 'a'");
	ERR("x.y = 1\nx . y = 2", "2:5", "duplicate key 'x.y'");
	ERR("a.b = 1\na = 2", "2:1", "duplicate key 'a'");
	ERR("[t]\nk = 1\n  k = 2", "3:3", "duplicate key 'k'");
	ERR("\"a b\" = 1\n\"a b\" = 1", "2:1", "duplicate key '\"a b\"'");
	/* Same key in different tables is fine. */
	OK("[a]\nk = 1\n[b]\nk = 2", "{\"a\":{\"k\":1},\"b\":{\"k\":2}}");
}

/* ---- tables ---- */

static void test_tables(void **state)
{
	OK("[a]\n[b]\n", "{\"a\":{},\"b\":{}}");
	OK("[ a . \"b c\" . 'd' ]\nx = 1", "{\"a\":{\"b c\":{\"d\":{\"x\":1}}}}");
	OK("[a.b.c]\nx = 1\n[a]\ny = 2\n[a.b]\nz = 3",
	   "{\"a\":{\"b\":{\"c\":{\"x\":1},\"z\":3},\"y\":2}}");
	OK("[x.y.z.w]\n[x]", "{\"x\":{\"y\":{\"z\":{\"w\":{}}}}}");
	/* Root keys come before any header. */
	OK("top = 1\n[t]\nin = 2", "{\"t\":{\"in\":2},\"top\":1}");
	ERR("[]", "1:2", "expected a key, found ']'");
	ERR("[a", "1:3", "expected ']' to close the header, found end of input");
	ERR("[a\n]", "1:3", "expected ']' to close the header, found end of line");
	ERR("[a b]", "1:4", "expected ']' to close the header, found 'b'");
	ERR("[a] x = 1", "1:5", "unexpected 'x' after the header");
	ERR("[a]]", "1:4", "unexpected ']' after the header");
	ERR("[a.]", "1:4", "expected a key, found ']'");
	ERR("[ [a]]", "1:3", "expected a key, found '['");
}

static void test_duplicate_tables(void **state)
{
	ERR("[a]\nx = 1\n[a]", "3:2", "duplicate table [a]");
	ERR("[a]\n[b]\n[ a ]", "3:3", "duplicate table [a]");
	ERR("[a.b]\n[a]\n[a]", "3:2", "duplicate table [a]");
	ERR("[a.b]\n[a.b]", "2:4", "duplicate table [a.b]");
	ERR("[a]\nb = 1\n[a.b]", "3:4", "cannot define table [a.b]: it is already an integer");
	/* A table made by dotted keys cannot be defined again by a header... */
	ERR("[fruit]\napple.color = 'red'\n[fruit.apple]", "3:8",
	    "cannot define table [fruit.apple]: it is already a table defined by dotted keys");
	ERR("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", "3:14",
	    "defined by dotted keys");
	ERR("a.b = 1\n[a]", "2:2", "defined by dotted keys");
	/* ...and dotted keys cannot reach into a table defined by a header. */
	ERR("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", "4:3",
	    "cannot add keys to 'b.c' with dotted keys: it is a table defined by a header");
	/* A table only implied by a header may be extended by dotted keys, which then
	 * define it. */
	OK("[a.b.c]\n[a]\nb.d = 1", "{\"a\":{\"b\":{\"c\":{},\"d\":1}}}");
	ERR("[a.b.c]\n[a]\nb.d = 1\n[a.b]", "4:4", "defined by dotted keys");
}

static void test_arrays_of_tables(void **state)
{
	OK("[[products]]\nname = 'Hammer'\nsku = 738594937\n\n[[products]]  # empty\n\n"
	   "[[products]]\nname = 'Nail'\n",
	   "{\"products\":[{\"name\":\"Hammer\",\"sku\":738594937},{},{\"name\":\"Nail\"}]}");
	OK("[[fruits]]\nname = 'apple'\n[fruits.physical]\ncolor = 'red'\n"
	   "[[fruits.varieties]]\nname = 'red delicious'\n[[fruits.varieties]]\nname = 'granny'\n"
	   "[[fruits]]\nname = 'banana'\n[[fruits.varieties]]\nname = 'plantain'",
	   "{\"fruits\":[{\"name\":\"apple\",\"physical\":{\"color\":\"red\"},"
	   "\"varieties\":[{\"name\":\"red delicious\"},{\"name\":\"granny\"}]},"
	   "{\"name\":\"banana\",\"varieties\":[{\"name\":\"plantain\"}]}]}");
	/* The same sub-table in each element. */
	OK("[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2",
	   "{\"a\":[{\"b\":{\"x\":1}},{\"b\":{\"x\":2}}]}");
	/* [[a.b]] implies table a, which a header may still define. */
	OK("[[a.b]]\nx = 1\n[a]\ny = 2", "{\"a\":{\"b\":[{\"x\":1}],\"y\":2}}");
	OK("[[ a . 'b' ]]", "{\"a\":{\"b\":[{}]}}");
	ERR("[[a]", "1:5", "expected ']]' to close the header, found end of input");
	ERR("[[a] ]", "1:5", "expected ']]' to close the header, found U+0020");
	ERR("[[]]", "1:3", "expected a key, found ']'");
}

static void test_table_array_conflicts(void **state)
{
	ERR("[x]\n[[x]]", "2:3", "cannot append to [[x]]: 'x' is a table defined by a header");
	ERR("[x.y]\n[[x]]", "2:3", "cannot append to [[x]]: 'x' is a table (implied by a header)");
	ERR("[[x]]\n[x]", "2:2", "cannot define table [x]: it is already an array of tables");
	ERR("x = []\n[[x]]", "2:3", "cannot append to [[x]]: 'x' is a static array");
	ERR("x = [{a = 1}]\n[[x]]", "2:3", "is a static array");
	ERR("x = [{a = 1}]\n[x.b]", "2:2", "cannot use 'x' as a table: it is a static array");
	ERR("x = 1\n[[x]]", "2:3", "'x' is an integer");
	ERR("[[fruit]]\n[[fruit.variety]]\n[fruit.variety]", "3:8",
	    "cannot define table [fruit.variety]: it is already an array of tables");
	ERR("[[a.b]]\n[a]\nb.y = 2", "3:1",
	    "cannot add keys to 'b' with dotted keys: it is an array of tables");
	ERR("[[a.b]]\n[[a]]", "2:3", "cannot append to [[a]]");
}

/* ---- encoding and control characters ---- */

static void test_invalid_utf8(void **state)
{
	ERR("a = \"\xff\"", "1:6", "invalid UTF-8 (byte 0xFF)");
	ERR("# \xc3\xa9\xc3\xa9 \x80", "1:6", "invalid UTF-8 (byte 0x80)"); /* stray continuation */
	ERR("a = 1\nb = '\xc0\x80'", "2:6", "invalid UTF-8 (byte 0xC0)");   /* overlong NUL */
	ERR("a = '\xe0\x80\xaf'", "1:6", "invalid UTF-8 (byte 0xE0)");	    /* overlong '/' */
	ERR("a = '\xed\xa0\x80'", "1:6", "invalid UTF-8 (byte 0xED)");	    /* surrogate */
	ERR("a = '\xf4\x90\x80\x80'", "1:6", "invalid UTF-8 (byte 0xF4)");  /* > U+10FFFF */
	ERR("a = '\xe2\x82'", "1:6", "invalid UTF-8 (byte 0xE2)");	    /* truncated */
	ERR("a = 'x'\n\xe2\x82", "2:1", "invalid UTF-8");		    /* truncated at end */
	/* Valid multi-byte characters of every length. */
	OK("a = '\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf'",
	   "{\"a\":\"\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}");
}

static void test_bare_cr_and_controls(void **state)
{
	ERR("a = 1\r", "1:6", "carriage return not followed by a line feed");
	ERR("a = 1\rb = 2", "1:6", "carriage return not followed by a line feed");
	ERR("a = 1 # c\r", "1:10", "carriage return not followed by a line feed");
	ERR("\r\n\r", "2:1", "carriage return not followed by a line feed");
	ERR("a = [1,\r2]", "1:8", "carriage return not followed by a line feed");
	ERR("# x\x7f", "1:4", "control character U+007F in a comment");
	ERR("# x\x01y", "1:4", "control character U+0001 in a comment");
	ERR("a = 1\x0c", "1:6", "unexpected U+000C after the value");
	ERR("\x0b"
	    "a = 1",
	    "1:1", "expected a key, found U+000B");
	OK("# tab\there\n", "{}");
}

/* Columns count characters, not bytes. */
static void test_columns_count_characters(void **state)
{
	ERR("a = \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" x", "1:11", "unexpected 'x'");
	ERR("# \xe2\x82\xac\nb = 'ok'\n\tc = 1 1", "3:8", "unexpected '1'");
}

/* ---- limits ---- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + n * ul, tail, tl + 1);
	return s;
}

static void test_depth_limit(void **state)
{
	/* 64 nested arrays are fine, the 65th is refused where it opens. */
	char *open64 = repeat("a = ", "[", 64, "");
	char *ok = repeat(open64, "]", 64, "");
	json_t *j = parse_ok(ok, strlen(ok));
	json_decref(j);
	free(ok);
	char *open65 = repeat("a = ", "[", 65, "");
	char *bad = repeat(open65, "]", 65, "");
	ERR_S(bad, "1:69", "nesting deeper than 64 levels");
	free(open64);
	free(open65);
	free(bad);

	/* Inline tables count the same way, as do tables made by dotted keys. */
	char *head = repeat("a = ", "{b = ", 64, "1");
	ok = repeat(head, "}", 64, "");
	j = parse_ok(ok, strlen(ok));
	json_decref(j);
	free(head);
	free(ok);
	head = repeat("a = ", "{b = ", 65, "1");
	bad = repeat(head, "}", 65, "");
	ERR_S(bad, "1:325", "nesting deeper than 64 levels");
	free(head);
	free(bad);

	ok = repeat("k", ".k", 64, " = 1"); /* 64 tables and a value */
	j = parse_ok(ok, strlen(ok));
	json_decref(j);
	free(ok);
	bad = repeat("k", ".k", 65, " = 1");
	ERR_S(bad, "1:131", "nesting deeper than 64 levels");
	free(bad);
	bad = repeat("k", ".k", 1000, " = 1"); /* refused while the key is read */
	ERR_S(bad, "1:131", "nesting deeper than 64 levels");
	free(bad);
	bad = repeat("k", ".k", 63, " = [[1]]"); /* 63 tables, then arrays at 64 and 65 */
	ERR_S(bad, "1:132", "nesting deeper than 64 levels");
	free(bad);

	/* Headers: 64 levels of tables, or an array of tables and its element. */
	ok = repeat("[k", ".k", 63, "]\nx = 1");
	j = parse_ok(ok, strlen(ok));
	json_decref(j);
	free(ok);
	bad = repeat("[k", ".k", 64, "]");
	ERR_S(bad, "1:130", "nesting deeper than 64 levels");
	free(bad);
	ok = repeat("[[k", ".k", 62, "]]"); /* array at 63, element at 64 */
	j = parse_ok(ok, strlen(ok));
	json_decref(j);
	free(ok);
	bad = repeat("[[k", ".k", 63, "]]");
	ERR_S(bad, "1:129", "nesting deeper than 64 levels");
	free(bad);
	bad = repeat("[k", ".k", 62, "]\nx.y = {}"); /* table at 63; x at 64; {} at 65 */
	ERR_S(bad, "2:7", "nesting deeper than 64 levels");
	free(bad);
}

static void test_size_limit(void **state)
{
	size_t n = AC_TOML_MAX_SIZE;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, '#', n + 1);
	big[0] = '#';
	json_t *j = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_toml_parse(big, n, "big.toml", &j, &err), 0); /* one long comment */
	json_decref(j);
	j = NULL;
	assert_int_equal(ac_toml_parse(big, n + 1, "big.toml", &j, &err), -1);
	assert_null(j);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_string_equal(err->msg, "big.toml: too large (1048577 bytes, the limit is 1048576)");
	ac_error_free(err);
	free(big);
}

static void test_header_goes_into_last_element(void **state)
{
	OK("[[a]]\nx = 1\n[[a]]\nx = 2\n[a.b]\ny = 3\n[[a.c]]\n[[a.c]]\nz = 4",
	   "{\"a\":[{\"x\":1},{\"b\":{\"y\":3},\"c\":[{},{\"z\":4}],\"x\":2}]}");
	/* Keys after [a.b] go into that sub-table of the last element, not the array. */
	OK("[[a]]\n[a.b]\nk = 1\n[[a]]\nk = 2", "{\"a\":[{\"b\":{\"k\":1}},{\"k\":2}]}");
	OK("[[a]]\nt = { x = [1, {y = 2}] }", "{\"a\":[{\"t\":{\"x\":[1,{\"y\":2}]}}]}");
}

static void test_whitespace_rules(void **state)
{
	OK("  a\t=\t1  \n\t[ t ]  \n  b=2\t# c", "{\"a\":1,\"t\":{\"b\":2}}");
	OK("a=[1,2]\nb={c=3}", "{\"a\":[1,2],\"b\":{\"c\":3}}");
	/* Only space and tab are whitespace. */
	ERR("a =\xc2\xa0"
	    "1",
	    "1:4", "expected a value, found U+00A0");
	ERR("a = 1\xe3\x80\x80", "1:6", "unexpected U+3000 after the value");
	/* One key/value pair per line. */
	ERR("a = 1 b = 2", "1:7", "unexpected 'b' after the value");
	ERR("[a] [b]", "1:5", "unexpected '[' after the header");
}

/* Keys in messages are spelled as TOML would, escaped, cut short, and valid UTF-8. */
static void test_keys_in_messages(void **state)
{
	ERR("\"a\\tb\\\"\\u0000\" = 1\n\"a\\tb\\\"\\u0000\" = 2", "2:1",
	    "duplicate key '\"a\\u0009b\\\"\\u0000\"'");
	ERR("'x.y'.z = 1\n\"x.y\".z = 2", "2:7", "duplicate key '\"x.y\".z'");

	char *doc = repeat("\"", "\xe2\x82\xac", 300, "\" = 1\n");
	char *twice = repeat(doc, "", 0, doc);
	json_t *j = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_toml_parse(twice, strlen(twice), "t.toml", &j, &err), -1);
	assert_non_null(strstr(err->msg, "t.toml:2:1: duplicate key '\"\xe2\x82\xac"));
	assert_non_null(strstr(err->msg, "...'"));
	assert_true(strlen(err->msg) < 300);
	json_t *s = json_string(err->msg); /* NULL if the cut split a character */
	assert_non_null(s);
	json_decref(s);
	ac_error_free(err);
	free(doc);
	free(twice);
}

/* ---- API behaviour ---- */

static void test_error_contract(void **state)
{
	json_t *j = (json_t *)0x1;
	ac_error_t *err = NULL;
	assert_int_equal(ac_toml_parse("a = ", 4, NULL, &j, &err), -1);
	assert_ptr_equal(j, (json_t *)0x1); /* untouched on failure */
	assert_string_equal(err->msg, "<input>:1:5: missing value, found end of input");
	ac_error_free(err);
	/* No error object requested: still fails cleanly. */
	j = NULL;
	assert_int_equal(ac_toml_parse("a = 1\na = 2", 11, "x", &j, NULL), -1);
	assert_null(j);
	/* Text need not be NUL-terminated: only len bytes are read. */
	const char text[] = {'a', ' ', '=', ' ', '7', '9'};
	assert_int_equal(ac_toml_parse(text, 5, "x", &j, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "a")), 7);
	json_decref(j);
}

static void test_parse_file(void **state)
{
	char dir[] = "/tmp/ac-test-toml-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/agentcell.toml", dir);
	const char *doc = "[sandbox]\nname = \"box\"\n[resources]\nvcpus = 2\n";
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, doc, strlen(doc), 0644, NULL), 0);
	json_t *j = NULL;
	ac_error_t *err = NULL;
	assert_int_equal(ac_toml_parse_file(path, &j, &err), 0);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"resources\":{\"vcpus\":2},\"sandbox\":{\"name\":\"box\"}}");
	free(s);
	json_decref(j);

	/* Errors name the file. */
	const char *bad = "[sandbox]\nname = \"box\"\nname = \"again\"\n";
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, bad, strlen(bad), 0644, NULL), 0);
	assert_int_equal(ac_toml_parse_file(path, &j, &err), -1);
	char want[256];
	snprintf(want, sizeof(want), "%s:3:1: duplicate key 'name'", path);
	assert_string_equal(err->msg, want);
	ac_error_free(err);
	err = NULL;

	/* Too large: refused before parsing. */
	size_t n = AC_TOML_MAX_SIZE + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	assert_int_equal(ac_write_file_atomic_at(AT_FDCWD, path, big, n, 0644, NULL), 0);
	free(big);
	assert_int_equal(ac_toml_parse_file(path, &j, &err), -1);
	assert_int_equal(err->kind, AC_ERR_INVALID);
	assert_non_null(strstr(err->msg, "too large"));
	ac_error_free(err);
	err = NULL;

	assert_int_equal(unlink(path), 0);
	assert_int_equal(ac_toml_parse_file(path, &j, &err), -1);
	assert_int_equal(err->kind, AC_ERR_NOT_FOUND);
	ac_error_free(err);
	err = NULL;
	assert_int_equal(ac_toml_parse_file(dir, &j, &err), -1); /* a directory */
	assert_int_equal(err->kind, AC_ERR_INVALID);
	ac_error_free(err);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- [resources] disk_mb and --disk ---- */

static int load_config_text(const char *text, json_t **cfg, ac_error_t **err)
{
	char path[] = "/tmp/ac-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = ac_config_load(path, "/nonexistent", cfg, err);
	unlink(path);
	return rc;
}

static void test_disk_mb(void **state)
{
	(void)state;
	uint64_t mb = 1;
	assert_int_equal(ac_disk_mb_parse("unlimited", &mb), 0);
	assert_int_equal(mb, 0);
	assert_int_equal(ac_disk_mb_parse("16", &mb), 0);
	assert_int_equal(mb, 16);
	assert_int_equal(ac_disk_mb_parse("1048576", &mb), 0);
	assert_int_equal(mb, AC_DISK_MAX_MB);
	static const char *const bad[] = {"0",
					  "15",
					  "-5",
					  "abc",
					  "",
					  "1048577",
					  "99999999999",
					  "12MB",
					  " 64",
					  "64 ",
					  "Unlimited",
					  "1e3",
					  "18446744073709551617"};
	for (size_t i = 0; i < AC_ARRAY_SIZE(bad); i++)
		if (ac_disk_mb_parse(bad[i], &mb) == 0)
			fail_msg("--disk '%s' accepted", bad[i]);

	/* agentcell.toml: a size, or 0 / "unlimited" for none; applied when the command
	 * line says nothing */
	static const struct {
		const char *text;
		int rc;
		uint64_t mb;
	} cases[] = {
	    {"[resources]\ndisk_mb = 2048\n", 0, 2048},
	    {"[resources]\ndisk_mb = 0\n", 0, 0},
	    {"[resources]\ndisk_mb = \"unlimited\"\n", 0, 0},
	    {"[resources]\ndisk_mb = 15\n", -1, 0},
	    {"[resources]\ndisk_mb = -1\n", -1, 0},
	    {"[resources]\ndisk_mb = 1.5\n", -1, 0},
	    {"[resources]\ndisk_mb = \"lots\"\n", -1, 0},
	    {"[resources]\ndisk_mb = true\n", -1, 0},
	};
	for (size_t i = 0; i < AC_ARRAY_SIZE(cases); i++) {
		json_t *cfg = NULL;
		ac_error_t *err = NULL;
		int rc = load_config_text(cases[i].text, &cfg, &err);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d (%s)", cases[i].text, rc, err ? err->msg : "");
		if (rc < 0) {
			assert_non_null(strstr(err->msg, "resources.disk_mb must be from 16"));
			ac_error_free(err);
			continue;
		}
		ac_sandbox_opts_t o = {0};
		assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
		assert_true(o.disk_set);
		assert_int_equal(o.disk_mb, cases[i].mb);
		/* the command line wins */
		o = (ac_sandbox_opts_t){.disk_mb = 64, .disk_set = true};
		assert_int_equal(ac_config_apply(cfg, &o, NULL), 0);
		assert_int_equal(o.disk_mb, 64);
		json_decref(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_agentkernel_config),
	    cmocka_unit_test(test_disk_mb),
	    cmocka_unit_test(test_empty_and_comments),
	    cmocka_unit_test(test_basic_escapes),
	    cmocka_unit_test(test_unicode_escapes),
	    cmocka_unit_test(test_invalid_escapes),
	    cmocka_unit_test(test_control_characters_in_strings),
	    cmocka_unit_test(test_literal_strings),
	    cmocka_unit_test(test_multiline_basic),
	    cmocka_unit_test(test_multiline_literal),
	    cmocka_unit_test(test_unterminated_strings),
	    cmocka_unit_test(test_decimal_integers),
	    cmocka_unit_test(test_radix_integers),
	    cmocka_unit_test(test_underscore_rules),
	    cmocka_unit_test(test_leading_zeros),
	    cmocka_unit_test(test_int64_limits),
	    cmocka_unit_test(test_floats),
	    cmocka_unit_test(test_float_errors),
	    cmocka_unit_test(test_booleans_and_bad_words),
	    cmocka_unit_test(test_dates_rejected),
	    cmocka_unit_test(test_arrays),
	    cmocka_unit_test(test_array_errors),
	    cmocka_unit_test(test_inline_tables),
	    cmocka_unit_test(test_inline_table_errors),
	    cmocka_unit_test(test_dotted_keys),
	    cmocka_unit_test(test_quoted_and_bare_keys),
	    cmocka_unit_test(test_missing_equals_and_value),
	    cmocka_unit_test(test_garbage_after_value),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_duplicate_tables),
	    cmocka_unit_test(test_arrays_of_tables),
	    cmocka_unit_test(test_table_array_conflicts),
	    cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_bare_cr_and_controls),
	    cmocka_unit_test(test_columns_count_characters),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_header_goes_into_last_element),
	    cmocka_unit_test(test_whitespace_rules),
	    cmocka_unit_test(test_keys_in_messages),
	    cmocka_unit_test(test_error_contract),
	    cmocka_unit_test(test_parse_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
