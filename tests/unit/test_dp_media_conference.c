/* A conference through the real node: build/bin/confnode is started with a config
 * of its own, three participants call the room over SIP/UDP with SDES-SRTP (two on
 * PCMU, one on Opus), each sends a tone of its own (400, 700, 1100 Hz), and each
 * must hear the other two and not itself (Goertzel on what it decodes). A tampered
 * SRTP packet shows up in /metrics; a room with SRTP required answers a plain offer
 * 488 with a Warning; when the participants fall silent the node ends each call
 * with a BYE, resent (timer E) until it is answered. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "md_srtp.h"
#include "test_dp_media_peer.h"

struct node {
    pid_t pid;
    char dir[128];
    uint16_t sip, admin, media;
};

static struct node node;

static bool port_free(uint16_t port, int type)
{
    int s = socket(AF_INET, type, 0);
    struct sockaddr_in a = peer_addr(port);
    bool ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static uint16_t free_ports(uint16_t lo, unsigned span, unsigned count, unsigned step)
{
    for (int tries = 0; tries < 500; tries++) {
        uint16_t base = (uint16_t)(lo + step * (unsigned)(rand() % (int)(span / step)));
        bool ok = true;
        for (unsigned i = 0; i < count && ok; i++)
            ok = port_free((uint16_t)(base + i), SOCK_DGRAM) &&
                 port_free((uint16_t)(base + i), SOCK_STREAM);
        if (ok)
            return base;
    }
    fail_msg("no free ports");
    return 0;
}

/* GET path from the admin API into out; returns the body or NULL. */
static char *http_get(const char *path, char *out, size_t cap)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = peer_addr(node.admin);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return NULL;
    }
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(s, req, (size_t)n) != n) {
        close(s);
        return NULL;
    }
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(s, out + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = 0;
    close(s);
    char *body = strstr(out, "\r\n\r\n");
    return body ? body + 4 : NULL;
}

/* The sum over workers of a Prometheus counter. */
static long long metric_sum(const char *name)
{
    static char buf[1 << 17];
    char *body = http_get("/metrics", buf, sizeof buf);
    if (!body)
        return -1;
    long long sum = 0;
    size_t nl = strlen(name);
    for (char *line = body; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, nl) == 0 && line[nl] == '{') {
            char *sp = strchr(line, ' ');
            if (sp)
                sum += strtoll(sp + 1, NULL, 10);
        }
    return sum;
}

static void start_node(void)
{
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    assert_true(n > 0);
    exe[n] = 0;
    strcpy(strrchr(exe, '/') + 1, "confnode");
    assert_int_equal(access(exe, X_OK), 0);
    snprintf(node.dir, sizeof node.dir, "/tmp/confnode-media-XXXXXX");
    assert_non_null(mkdtemp(node.dir));
    node.sip = free_ports(12000, 5000, 1, 2);
    node.admin = free_ports(18000, 2500, 1, 1);
    node.media = free_ports(30000, 2600, 64, 64);
    char conf[600], text[2048];
    snprintf(conf, sizeof conf, "%s/node.conf", node.dir);
    snprintf(text, sizeof text,
             "node: { name = \"media-test\"; workers = 2; log_level = \"info\"; };\n"
             "sip: { listen = \"127.0.0.1\"; udp_port = %u; tcp_port = %u; tls_port = 0; };\n"
             "media: { address = \"127.0.0.1\"; port_min = %u; port_max = %u;\n"
             "         srtp = \"optional\"; media_timeout = 2; mix_speakers = 3; };\n"
             "admin: { listen = \"127.0.0.1\"; port = %u; };\n"
             "vmrs = ( { alias = \"meet@example.test\"; },\n"
             "         { alias = \"secure@example.test\"; srtp = \"required\"; } );\n",
             node.sip, node.sip, node.media, node.media + 63, node.admin);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    char logf[600];
    snprintf(logf, sizeof logf, "%s/node.log", node.dir);
    node.pid = fork();
    assert_true(node.pid >= 0);
    if (node.pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(exe, "confnode", "run", "-c", conf, (char *)NULL);
        _exit(127);
    }
    char buf[4096];
    for (int i = 0; i < 300; i++) {
        if (http_get("/status", buf, sizeof buf))
            return;
        int st;
        if (waitpid(node.pid, &st, WNOHANG) == node.pid)
            fail_msg("confnode exited during start-up (see %s)", logf);
        usleep(100000);
    }
    fail_msg("confnode did not answer /status within 30 s");
}

static int stop_node(void)
{
    if (node.pid <= 0)
        return -1;
    kill(node.pid, SIGTERM);
    int st = -1;
    for (int i = 0; i < 100; i++) {
        if (waitpid(node.pid, &st, WNOHANG) == node.pid) {
            node.pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(100000);
    }
    kill(node.pid, SIGKILL);
    waitpid(node.pid, &st, 0);
    node.pid = 0;
    return -1;
}

/* ---- SIP, just enough ---- */
struct call {
    int sip;
    uint16_t sip_port;
    char call_id[64], from_tag[32], to_tag[64];
    char answer_crypto[200];
    uint16_t media_port;
    int status;
    char last[8192];
};

static const char *hdr(const char *msg, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(msg, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)n, p);
    return out;
}

/* Waits up to ms for a SIP message; returns its length or 0. */
static size_t sip_recv(struct call *c, int ms)
{
    uint64_t end = peer_now_us() + (uint64_t)ms * 1000u;
    while (peer_now_us() < end) {
        ssize_t n = recv(c->sip, c->last, sizeof c->last - 1, 0);
        if (n > 0) {
            c->last[n] = 0;
            return (size_t)n;
        }
        usleep(2000);
    }
    return 0;
}

static void sip_send(struct call *c, const char *msg)
{
    struct sockaddr_in to = peer_addr(node.sip);
    assert_true(sendto(c->sip, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof to) > 0);
}

/* INVITE with an SDP offer; returns the final status. On 200, acks it. */
static int invite(struct call *c, struct peer *p, const char *room, bool secure, const char *codec)
{
    static unsigned seq;
    c->sip = peer_socket(&c->sip_port);
    assert_true(c->sip >= 0);
    snprintf(c->call_id, sizeof c->call_id, "media-%u-%d@127.0.0.1", ++seq, getpid());
    snprintf(c->from_tag, sizeof c->from_tag, "ft%u", seq);
    char crypto[240] = "";
    if (secure) {
        char line[200];
        assert_true(peer_crypto_line(p, line, sizeof line) > 0);
        snprintf(crypto, sizeof crypto, "a=crypto:%s\r\n", line);
    }
    char sdp[1024], msg[4096];
    int sl = snprintf(sdp, sizeof sdp,
                      "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                      "t=0 0\r\nm=audio %u %s %u 101\r\na=rtpmap:%u %s\r\n"
                      "a=rtpmap:101 telephone-event/%s\r\n%sa=rtcp-mux\r\na=sendrecv\r\n",
                      p->port, secure ? "RTP/SAVP" : "RTP/AVP", p->pt, p->pt, codec,
                      p->codec == MD_CODEC_OPUS ? "48000" : "8000", crypto);
    snprintf(msg, sizeof msg,
             "INVITE sip:%s@127.0.0.1:%u SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-inv-%s;rport\r\n"
             "Max-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=%s\r\n"
             "To: <sip:%s@example.test>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"
             "Contact: <sip:peer@127.0.0.1:%u>\r\nContent-Type: application/sdp\r\n"
             "Content-Length: %d\r\n\r\n%s",
             room, node.sip, c->sip_port, c->from_tag, c->from_tag, room, c->call_id, c->sip_port,
             sl, sdp);
    if (getenv("MEDIA_TEST_DEBUG"))
        fprintf(stderr, "%s\n", msg);
    sip_send(c, msg);
    for (;;) {
        if (!sip_recv(c, 5000)) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "tail -n 20 %s/node.log >&2", node.dir);
            if (system(cmd) != 0)
                fprintf(stderr, "(no node log)\n");
            fail_msg("no final answer to the INVITE");
        }
        c->status = atoi(c->last + 8);
        if (c->status >= 200)
            break;
    }
    char to[256], tmp[256];
    if (hdr(c->last, "To", to, sizeof to) && strstr(to, "tag="))
        snprintf(c->to_tag, sizeof c->to_tag, "%.*s", (int)strcspn(strstr(to, "tag=") + 4, ";>"),
                 strstr(to, "tag=") + 4);
    snprintf(msg, sizeof msg,
             "ACK sip:%s@127.0.0.1:%u SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-ack-%s\r\n"
             "Max-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=%s\r\n"
             "To: <sip:%s@example.test>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\n"
             "Content-Length: 0\r\n\r\n",
             room, node.sip, c->sip_port, c->from_tag, c->from_tag, room, c->to_tag, c->call_id);
    sip_send(c, msg);
    if (c->status != 200)
        return c->status;
    const char *m = strstr(c->last, "\r\nm=audio ");
    assert_non_null(m);
    c->media_port = (uint16_t)atoi(m + 10);
    p->to = peer_addr(c->media_port);
    const char *cr = strstr(c->last, "a=crypto:");
    if (secure) {
        assert_non_null(cr);
        snprintf(c->answer_crypto, sizeof c->answer_crypto, "%.*s", (int)strcspn(cr + 9, "\r\n"),
                 cr + 9);
        assert_int_equal(peer_answer_key(p, c->answer_crypto), 0);
    } else {
        assert_null(cr);
    }
    (void)tmp;
    return 200;
}

/* Answers the BYE in c->last with 200. */
static void answer_bye(struct call *c)
{
    char via[512], from[256], to[256], cid[128], cseq[64], msg[2048];
    assert_non_null(hdr(c->last, "Via", via, sizeof via));
    assert_non_null(hdr(c->last, "From", from, sizeof from));
    assert_non_null(hdr(c->last, "To", to, sizeof to));
    assert_non_null(hdr(c->last, "Call-ID", cid, sizeof cid));
    assert_non_null(hdr(c->last, "CSeq", cseq, sizeof cseq));
    snprintf(msg, sizeof msg,
             "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"
             "Content-Length: 0\r\n\r\n",
             via, from, to, cid, cseq);
    sip_send(c, msg);
}

static int setup(void **state)
{
    (void)state;
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    assert_int_equal(md_srtp_global_init(), MD_OK);
    start_node();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_node();
    char cmd[300];
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -n 30 %s/node.log >&2", node.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no node log)\n");
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", node.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", node.dir);
    return rc == 0 ? 0 : -1;
}

static void three_srtp_callers_hear_each_other_and_not_themselves(void **state)
{
    (void)state;
    static struct peer p[3];
    static struct call c[3];
    const double freq[3] = {400, 700, 1100};
    assert_int_equal(peer_init(&p[0], 0, MD_CODEC_PCMU, 0, freq[0], true, false), 0);
    assert_int_equal(peer_init(&p[1], 1, MD_CODEC_PCMU, 0, freq[1], true, false), 0);
    assert_int_equal(peer_init(&p[2], 2, MD_CODEC_OPUS, 111, freq[2], true, false), 0);
    assert_int_equal(invite(&c[0], &p[0], "meet", true, "PCMU/8000"), 200);
    assert_int_equal(invite(&c[1], &p[1], "meet", true, "PCMU/8000"), 200);
    assert_int_equal(invite(&c[2], &p[2], "meet", true, "opus/48000/2"), 200);
    assert_non_null(strstr(c[2].last, "a=rtpmap:111 opus/48000/2"));
    assert_non_null(strstr(c[0].last, "RTP/SAVP 0 101"));
    assert_non_null(strstr(c[0].last, "a=rtcp-mux"));

    /* 3 s of tones, paced at 20 ms */
    uint64_t next = peer_now_us();
    for (int t = 0; t < 150; t++) {
        for (int i = 0; i < 3; i++)
            peer_send_audio(&p[i], false);
        next += 20000;
        while (peer_now_us() < next) {
            for (int i = 0; i < 3; i++)
                peer_drain(&p[i]);
            usleep(1000);
        }
    }
    for (int i = 0; i < 3; i++) {
        peer_drain(&p[i]);
        assert_int_equal(p[i].rx_bad, 0);
        assert_true(p[i].rx_audio > 100);
        size_t skip = 8000;
        assert_true(p[i].n_pcm > skip + 8000);
        for (int j = 0; j < 3; j++) {
            double s =
                goertzel(p[i].pcm + skip, p[i].n_pcm - skip, freq[j]) / (double)(p[i].n_pcm - skip);
            fprintf(stderr, "participant %d hears %4.0f Hz: %.3f\n", i, freq[j], s);
            if (i == j)
                assert_true(s < 0.02);
            else
                assert_true(s > 0.08);
        }
    }

    /* a tampered packet is dropped and counted */
    long long before = metric_sum("confnode_media_srtp_auth_failures_total");
    assert_int_equal(before, 0);
    peer_send_audio(&p[0], true);
    long long after = before;
    for (int i = 0; i < 50 && after == before; i++) {
        usleep(20000);
        after = metric_sum("confnode_media_srtp_auth_failures_total");
    }
    assert_int_equal(after, before + 1);
    assert_true(metric_sum("confnode_media_rtp_in_total") >= 400);
    assert_true(metric_sum("confnode_media_rtp_out_total") >= 300);
    assert_int_equal(metric_sum("confnode_media_legs"), 3);

    /* silence: the node ends each call (media_timeout = 2 s) with a BYE; the first
       one is left unanswered to see it resent */
    bool got[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        assert_true(sip_recv(&c[i], 6000) > 0);
        assert_true(strncmp(c[i].last, "BYE sip:peer@127.0.0.1:", 23) == 0);
        assert_non_null(strstr(c[i].last, c[i].call_id));
        assert_non_null(strstr(c[i].last, "media timeout"));
        if (i == 0) {
            uint64_t t0 = peer_now_us();
            assert_true(sip_recv(&c[i], 2000) > 0); /* timer E: again after T1 */
            assert_true(strncmp(c[i].last, "BYE ", 4) == 0);
            assert_true(peer_now_us() - t0 >= 300000);
        }
        answer_bye(&c[i]);
        got[i] = true;
    }
    assert_true(got[0] && got[1] && got[2]);
    usleep(300000);
    assert_int_equal(metric_sum("confnode_media_legs"), 0);
    assert_int_equal(metric_sum("confnode_media_timeouts_total"), 3);
    assert_int_equal(metric_sum("confnode_calls_active"), 0);
    for (int i = 0; i < 3; i++) {
        close(c[i].sip);
        peer_free(&p[i]);
    }
}

static void a_room_that_requires_srtp_refuses_a_plain_offer_with_a_warning(void **state)
{
    (void)state;
    static struct peer p;
    static struct call c;
    assert_int_equal(peer_init(&p, 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    assert_int_equal(invite(&c, &p, "secure", false, "PCMU/8000"), 488);
    char w[256];
    assert_non_null(hdr(c.last, "Warning", w, sizeof w));
    assert_non_null(strstr(w, "SRTP required"));
    close(c.sip);
    peer_free(&p);
    /* and a secure one is taken */
    assert_int_equal(peer_init(&p, 0, MD_CODEC_PCMA, 8, 400, true, false), 0);
    assert_int_equal(invite(&c, &p, "secure", true, "PCMA/8000"), 200);
    assert_non_null(strstr(c.last, "RTP/SAVP 8"));
    close(c.sip);
    peer_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_srtp_callers_hear_each_other_and_not_themselves),
        cmocka_unit_test(a_room_that_requires_srtp_refuses_a_plain_offer_with_a_warning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
