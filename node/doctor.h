/* `confnode doctor DOMAIN`: federation readiness of a domain, judged the way a
 * federated Microsoft edge will judge it.
 *
 * Checks, in order (each one a line PASS / INFO / WARN / FAIL with what was found
 * and, when something is wrong, the fix):
 *   srv            _sipfederationtls._tcp.DOMAIN exists (and, with several records,
 *                  which one a Microsoft edge uses)
 *   fallback_host  sip.DOMAIN, the host Lync phones fall back to (information)
 * then for each SRV record:
 *   srv_port       5061 (5601 is named as the typo it usually is)
 *   strict_naming  the target is DOMAIN or a host directly in it
 *   address        the target's A/AAAA records
 * and for each address of the target:
 *   tcp            a TCP connect to address:port
 *   tls            a TLS handshake with SNI = the target
 *   chain          the peer chain reaches a trusted CA (--ca, default: system store)
 *   san            the target is in the SAN dNSNames (CN only without SAN)
 *   expiry         not expired (FAIL), not within 30 days of expiry (WARN)
 *   eku            serverAuth and clientAuth (federation is mutual TLS)
 *
 * Exit status: 0 when no check FAILs, 1 otherwise, 2 on usage errors. */
#ifndef CN_DOCTOR_H
#define CN_DOCTOR_H

#include <stdio.h>

typedef enum {
    CN_DOC_PASS = 0,
    CN_DOC_INFO = 1,
    CN_DOC_WARN = 2,
    CN_DOC_FAIL = 3,
} cn_doc_status_t;

#define CN_DOC_EXPIRY_WARN_DAYS 30

struct cn_doc_check {
    char id[24]; /* "srv", "srv_port", "strict_naming", ... */
    cn_doc_status_t status;
    char target[300]; /* what was checked: a name, "address:port" */
    char found[768];  /* what was found */
    char fix[300];    /* what to do; "" when nothing */
};

struct cn_doc_report {
    char domain[256];
    char dns[160]; /* the DNS server used, or "system resolver" */
    char ca[300];  /* the CA file used, or "system store" */
    size_t n;
    size_t cap;
    struct cn_doc_check *checks;
    size_t count[4]; /* per status */
};

struct cn_doc_opts {
    const char *domain;
    const char *dns_server; /* "127.0.0.1:5353"; NULL: resolv.conf */
    const char *ca_file;    /* NULL: system store */
    const char *cert_file;  /* optional client certificate for the handshakes */
    const char *key_file;
    int timeout_ms; /* per DNS query, TCP connect and TLS handshake */
};

/* Runs every check into *r (free with cn_doctor_report_free). Returns 0, or -1 with
 * a message in err when the checks could not start (invalid domain, bad --dns value,
 * unreadable CA file, ...). */
int cn_doctor_run(const struct cn_doc_opts *o, struct cn_doc_report *r, char *err, size_t errsz);
void cn_doctor_report_free(struct cn_doc_report *r);

const char *cn_doc_status_str(cn_doc_status_t st); /* "PASS", "INFO", "WARN", "FAIL" */

/* Human text, one line per check plus fix lines and a summary. */
void cn_doctor_print(FILE *f, const struct cn_doc_report *r);

/* The report as a JSON document (malloc'd, NUL-terminated), or NULL. */
char *cn_doctor_json(const struct cn_doc_report *r);

/* The command: argv[0] is "doctor". Returns the exit status. */
int cn_cmd_doctor(int argc, char **argv);

#endif
