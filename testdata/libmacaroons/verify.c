/* Differential-test harness for amaretti: verifies macaroons with
 * libmacaroons (Debian's libmacaroons-dev, 0.3.0, v1 format only).
 * Built and run only by verifier/reference_test.go, never by a program.
 *
 * stdin: one line per token, "KEY TOKEN": KEY the root secret in standard
 * padded base64, TOKEN the v1 serialization (libmacaroons' own base64).
 * stdout: one line per token, "ok IDHEX CAVHEX,CAVHEX,..." when the
 * signature chain verifies with every first-party caveat accepted (each
 * caveat the general checker saw, in order), "bad-token CODE" when it does
 * not deserialize, "bad-key" when KEY is not base64, or "refused CODE".
 */
#include <macaroons.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *caveats;
static size_t caveats_len, caveats_cap;

static void append(const char *s, size_t n) {
	if (caveats_len + n + 1 > caveats_cap) {
		caveats_cap = 2 * (caveats_len + n + 1);
		caveats = realloc(caveats, caveats_cap);
		if (!caveats) abort();
	}
	memcpy(caveats + caveats_len, s, n);
	caveats_len += n;
	caveats[caveats_len] = 0;
}

static void append_hex(const unsigned char *p, size_t n) {
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		char h[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
		append(h, 2);
	}
}

/* Accepts every caveat and records it. */
static int general(void *f, const unsigned char *pred, size_t pred_sz) {
	(void)f;
	if (caveats_len > 0) append(",", 1);
	append_hex(pred, pred_sz);
	if (pred_sz == 0) append("-", 1); /* an empty caveat, told apart from none */
	return 0;
}

static int b64val(int c) {
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Standard padded base64; returns the decoded length or -1. */
static long b64decode(const char *s, unsigned char *out, size_t cap) {
	size_t n = strlen(s), o = 0;
	if (n % 4) return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int j = 0; j < 4; j++) {
			v[j] = s[i + j] == '=' && i + 4 == n && j >= 2 ? 0 : b64val(s[i + j]);
			if (v[j] < 0) return -1;
		}
		unsigned long x = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
		int bytes = s[i + 2] == '=' ? 1 : s[i + 3] == '=' ? 2 : 3;
		if (o + bytes > cap) return -1;
		out[o++] = x >> 16;
		if (bytes > 1) out[o++] = x >> 8;
		if (bytes > 2) out[o++] = x;
	}
	return (long)o;
}

int main(void) {
	static char line[1 << 20];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\r\n")] = 0;
		char *sp = strchr(line, ' ');
		if (!sp) {
			puts("bad-line");
			fflush(stdout);
			continue;
		}
		*sp = 0;
		unsigned char key[256];
		long keylen = b64decode(line, key, sizeof key);
		if (keylen < 0) {
			puts("bad-key");
			fflush(stdout);
			continue;
		}
		enum macaroon_returncode err = MACAROON_SUCCESS;
		struct macaroon *m = macaroon_deserialize(sp + 1, &err);
		if (!m) {
			printf("bad-token %d\n", err);
			fflush(stdout);
			continue;
		}
		struct macaroon_verifier *v = macaroon_verifier_create();
		caveats_len = 0;
		append("", 0);
		err = MACAROON_SUCCESS;
		if (macaroon_verifier_satisfy_general(v, general, NULL, &err) < 0) abort();
		int rc = macaroon_verify(v, m, key, (size_t)keylen, NULL, 0, &err);
		if (rc == 0) {
			const unsigned char *id;
			size_t id_sz;
			macaroon_identifier(m, &id, &id_sz);
			char *cavs = strdup(caveats);
			caveats_len = 0;
			append("", 0);
			append_hex(id, id_sz);
			printf("ok %s %s\n", caveats, cavs);
			free(cavs);
		} else {
			printf("refused %d\n", err);
		}
		fflush(stdout);
		macaroon_verifier_destroy(v);
		macaroon_destroy(m);
	}
	return 0;
}
