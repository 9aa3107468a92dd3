/* docs/openapi.json, built into the binary for GET /openapi.json (one file, one truth). */
	.section .rodata
	.global ac_openapi_json
	.type ac_openapi_json, @object
ac_openapi_json:
	.incbin "docs/openapi.json"
ac_openapi_json_end:
	.byte 0
	.balign 8
	.global ac_openapi_json_len
	.type ac_openapi_json_len, @object
ac_openapi_json_len:
	.quad ac_openapi_json_end - ac_openapi_json
	.section .note.GNU-stack,"",@progbits
