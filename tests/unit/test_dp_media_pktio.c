/* dp_media on a packet I/O backend (dpk_pktio.h) instead of its own sockets: the
 * test is the backend. Its open() binds a loopback socket per port in the test's own
 * epoll set (dp_media's epoll sees none), datagrams reach dp_media through
 * dp_media_input() with the value open() was given, and what dp_media sends goes
 * through tx_slot/tx_commit/tx_flush, recorded per local port. SRTP conferences mix
 * as on sockets; the port errors map to dp_media's results; a backend out of buffers
 * is counted as lost sends; closing a leg closes its ports. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <cmocka.h>

#include "dp_media.h"
#include "dpk_pktio.h"
#include "md_srtp.h"
#include "test_dp_media_peer.h"

#define TAG 9
#define IO_PORTS 16
#define IO_CAP 1400 /* smaller than dp_media's own buffers: the cap is the backend's */

struct io_port {
    uint16_t port;
    uint32_t value;
    uint8_t tos;
    int fd;
    uint64_t sent;
};

struct loop_io {
    int epfd;
    struct io_port p[IO_PORTS];
    unsigned opens, closes, flushes, commits;
    int refuse; /* 0, or the negative errno open() returns */
    bool no_buffers;
    bool slot_out;
    uint8_t buf[IO_CAP];
};

struct fx {
    int epfd; /* dp_media's (timer only) */
    struct loop_io io;
    struct dpk_pktio pio;
    struct dp_media *m;
    struct peer p[3];
    uint32_t leg[3];
    uint16_t port[3];
};

static struct io_port *io_find(struct loop_io *io, uint16_t port)
{
    for (unsigned i = 0; i < IO_PORTS; i++)
        if (io->p[i].fd >= 0 && io->p[i].port == port)
            return &io->p[i];
    return NULL;
}

static int io_open(void *ctx, const char *addr, uint16_t port, uint32_t value, uint8_t tos)
{
    struct loop_io *io = ctx;
    if (io->refuse)
        return io->refuse;
    if (strcmp(addr, "127.0.0.1") != 0)
        return -EINVAL;
    if (io_find(io, port))
        return -EADDRINUSE;
    for (unsigned i = 0; i < IO_PORTS; i++) {
        struct io_port *p = &io->p[i];
        if (p->fd >= 0)
            continue;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = peer_addr(port);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return -e;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        assert_int_equal(epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev), 0);
        *p = (struct io_port){.port = port, .value = value, .tos = tos, .fd = fd};
        io->opens++;
        return 0;
    }
    return -EINVAL;
}

static void io_close(void *ctx, uint16_t port)
{
    struct loop_io *io = ctx;
    struct io_port *p = io_find(io, port);
    assert_non_null(p);
    close(p->fd);
    p->fd = -1;
    io->closes++;
}

static uint8_t *io_tx_slot(void *ctx, size_t *cap)
{
    struct loop_io *io = ctx;
    if (io->no_buffers)
        return NULL;
    io->slot_out = true;
    *cap = sizeof io->buf;
    return io->buf;
}

static int io_tx_commit(void *ctx, uint16_t port, const struct sockaddr_storage *to,
                        socklen_t tolen, size_t len)
{
    struct loop_io *io = ctx;
    assert_true(io->slot_out);
    assert_true(len <= sizeof io->buf);
    io->slot_out = false;
    struct io_port *p = io_find(io, port);
    assert_non_null(p); /* only ports dp_media opened send */
    io->commits++;
    if (sendto(p->fd, io->buf, len, 0, (const struct sockaddr *)to, tolen) != (ssize_t)len)
        return -1;
    p->sent++;
    return 0;
}

static void io_tx_flush(void *ctx)
{
    struct loop_io *io = ctx;
    io->flushes++;
}

static int setup(void **state)
{
    assert_int_equal(md_srtp_global_init(), MD_OK);
    struct fx *f = calloc(1, sizeof *f);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    f->io.epfd = epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < IO_PORTS; i++)
        f->io.p[i].fd = -1;
    f->pio = (struct dpk_pktio){.io = &f->io,
                                .open = io_open,
                                .close = io_close,
                                .tx_slot = io_tx_slot,
                                .tx_commit = io_tx_commit,
                                .tx_flush = io_tx_flush};
    f->m = dp_media_create(0, f->epfd, TAG);
    assert_non_null(f->m);
    assert_int_equal(dp_media_set_pktio(f->m, &f->pio), 0);
    for (int i = 0; i < 3; i++)
        f->p[i].fd = f->p[i].vfd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dp_media_free(f->m);
    close(f->epfd);
    for (unsigned i = 0; i < IO_PORTS; i++)
        if (f->io.p[i].fd >= 0)
            close(f->io.p[i].fd);
    close(f->io.epfd);
    for (int i = 0; i < 3; i++)
        peer_free(&f->p[i]);
    free(f);
    return 0;
}

/* Runs the backend and dp_media's timer for ms milliseconds. */
static void pump(struct fx *f, int ms)
{
    uint64_t end = peer_now_us() + (uint64_t)ms * 1000u;
    for (;;) {
        uint64_t now = peer_now_us();
        if (now >= end)
            break;
        struct epoll_event ev[16];
        int n = epoll_wait(f->epfd, ev, 16, 0);
        for (int i = 0; i < n; i++) {
            assert_int_equal(ev[i].data.u64 >> 32, TAG);
            dp_media_event(f->m, (uint32_t)ev[i].data.u64, ev[i].events);
        }
        n = epoll_wait(f->io.epfd, ev, 16, 1);
        for (int i = 0; i < n; i++) {
            struct io_port *p = &f->io.p[ev[i].data.u32];
            uint8_t buf[2048];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t k;
            while (p->fd >= 0 && (k = recvfrom(p->fd, buf, sizeof buf, MSG_DONTWAIT,
                                               (struct sockaddr *)&from, &fl)) >= 0) {
                dp_media_input(f->m, p->value, buf, (size_t)k, &from, fl, peer_now_us() / 1000u);
                fl = sizeof from;
            }
        }
    }
}

/* A free even port pair on loopback (bound briefly to check). */
static uint16_t free_pair(void)
{
    for (int tries = 0; tries < 200; tries++) {
        uint16_t port = (uint16_t)(20000 + 2 * (rand() % 4000));
        int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in x = peer_addr(port), y = peer_addr((uint16_t)(port + 1));
        bool ok = bind(a, (struct sockaddr *)&x, sizeof x) == 0 &&
                  bind(b, (struct sockaddr *)&y, sizeof y) == 0;
        close(a);
        close(b);
        if (ok)
            return port;
    }
    fail_msg("no free port pair");
    return 0;
}

static char crypto_buf[3][DP_MEDIA_CRYPTO_MAX];

static void leg_params(struct fx *f, int i, bool mux, struct dp_media_leg_params *lp)
{
    struct peer *p = &f->p[i];
    *lp = (struct dp_media_leg_params){.conf_key = 77, .local_address = "127.0.0.1", .owner = p};
    struct dp_media_stream_params *a = &lp->audio;
    a->enabled = true;
    a->local_port = f->port[i] = free_pair();
    struct sockaddr_in r = peer_addr(p->port);
    memcpy(&a->remote, &r, sizeof r);
    memcpy(&a->remote_rtcp, &r, sizeof r);
    a->remote_len = sizeof r;
    a->rtcp_mux = mux;
    a->send = a->recv = true;
    a->codec = DP_CODEC_PCMU;
    a->pt = 0;
    a->te_pt = 101;
    if (p->secure) {
        a->secure = true;
        int n = peer_crypto_line(p, crypto_buf[i], sizeof crypto_buf[i]);
        assert_true(n > 0);
        a->crypto[0] = crypto_buf[i];
        a->crypto_len[0] = (size_t)n;
        a->n_crypto = 1;
    }
}

static void open_leg(struct fx *f, int i, bool mux)
{
    struct dp_media_leg_params lp;
    leg_params(f, i, mux, &lp);
    char why[200];
    assert_int_equal(dp_media_leg_open(f->m, &lp, &f->leg[i], why, sizeof why), DP_MEDIA_OK);
    f->p[i].to = peer_addr(lp.audio.local_port);
    if (f->p[i].secure)
        assert_int_equal(peer_answer_key(&f->p[i], lp.audio.crypto_answer), 0);
}

static double tone_share(const struct peer *p, double freq)
{
    size_t skip = 8000;
    if (p->n_pcm <= skip)
        return 0.0;
    return goertzel(p->pcm + skip, p->n_pcm - skip, freq) / (double)(p->n_pcm - skip);
}

static void talk(struct fx *f, int n, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 0; i < n; i++)
            peer_send_audio(&f->p[i], false);
        pump(f, 20);
        for (int i = 0; i < n; i++)
            peer_drain(&f->p[i]);
    }
}

static void
srtp_participants_hear_each_other_through_the_packet_io_and_no_socket_of_its_own(void **state)
{
    struct fx *f = *state;
    const double freq[3] = {400, 700, 1100};
    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, freq[i], true, false),
                         0);
    open_leg(f, 0, true);
    open_leg(f, 1, true);
    open_leg(f, 2, false); /* RTCP on port + 1: a second port through open() */
    assert_int_equal(f->io.opens, 4);
    struct io_port *rtcp = io_find(&f->io, (uint16_t)(f->port[2] + 1));
    assert_non_null(rtcp);
    assert_int_equal(rtcp->value, (f->leg[2] & 0xffff) * 4 + 1);
    assert_int_equal(io_find(&f->io, f->port[0])->tos, 0xb8); /* audio: EF */
    talk(f, 3, 150);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = tone_share(&f->p[i], freq[j]);
            if (i == j)
                assert_true(s < 0.02);
            else
                assert_true(s > 0.08);
        }
    const struct dp_media_stats *st = dp_media_stats(f->m);
    assert_true(atomic_load(&st->rtp_in) >= 3 * 140);
    assert_true(atomic_load(&st->rtp_out) >= 3 * 100);
    assert_int_equal(atomic_load(&st->srtp_auth_failures), 0);
    assert_int_equal(atomic_load(&st->drop_send), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->p[i].rx_bad, 0);
        assert_true(io_find(&f->io, f->port[i])->sent >= 100);
    }
    assert_true(f->io.flushes > 0);
    /* nothing of dp_media's own was opened: its epoll holds only its timer */
    struct epoll_event ev[4];
    int n = epoll_wait(f->epfd, ev, 4, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal((uint32_t)ev[i].data.u64, 0xffffffffu);
}

static void closing_a_leg_closes_its_ports_and_later_datagrams_for_it_are_ignored(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    open_leg(f, 0, false);
    uint32_t value = (f->leg[0] & 0xffff) * 4;
    assert_int_equal(f->io.opens, 2);
    dp_media_leg_close(f->m, f->leg[0]);
    assert_int_equal(f->io.closes, 2);
    assert_null(io_find(&f->io, f->port[0]));
    const struct dp_media_stats *st = dp_media_stats(f->m);
    uint64_t in = atomic_load(&st->rtp_in);
    uint8_t buf[300];
    size_t len = peer_audio_packet(&f->p[0], buf, sizeof buf, false);
    struct sockaddr_in from = peer_addr(f->p[0].port);
    dp_media_input(f->m, value, buf, len, (struct sockaddr_storage *)&from, sizeof from,
                   peer_now_us() / 1000u);
    assert_int_equal(atomic_load(&st->rtp_in), in);
}

static void the_backends_port_errors_become_dp_medias_results(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    const int errs[] = {-EADDRINUSE, -EXDEV, -EINVAL};
    const int want[] = {DP_MEDIA_PORT_IN_USE, DP_MEDIA_PARAM, DP_MEDIA_BUSY};
    for (unsigned k = 0; k < 3; k++) {
        struct dp_media_leg_params lp;
        leg_params(f, 0, true, &lp);
        f->io.refuse = errs[k];
        uint32_t leg = 0;
        char why[200];
        assert_int_equal(dp_media_leg_open(f->m, &lp, &leg, why, sizeof why), want[k]);
        assert_true(strlen(why) > 0);
        assert_int_equal(atomic_load(&dp_media_stats(f->m)->legs), 0);
    }
    /* the second port of a pair refused: the first is closed again */
    f->io.refuse = 0;
    struct dp_media_leg_params lp;
    leg_params(f, 0, false, &lp);
    assert_int_equal(io_open(&f->io, "127.0.0.1", (uint16_t)(lp.audio.local_port + 1), 99, 0), 0);
    uint32_t leg = 0;
    char why[200];
    assert_int_equal(dp_media_leg_open(f->m, &lp, &leg, why, sizeof why), DP_MEDIA_PORT_IN_USE);
    assert_null(io_find(&f->io, lp.audio.local_port));
}

static void a_backend_without_buffers_counts_lost_sends_and_recovers(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 400 + 300 * i, true, false), 0);
    open_leg(f, 0, true);
    open_leg(f, 1, true);
    f->io.no_buffers = true;
    talk(f, 2, 20);
    const struct dp_media_stats *st = dp_media_stats(f->m);
    uint64_t lost = atomic_load(&st->drop_send);
    assert_true(lost >= 10);
    assert_int_equal(f->io.commits, 0);
    f->io.no_buffers = false;
    talk(f, 2, 60);
    assert_true(f->io.commits >= 40);
    assert_true(f->p[0].rx_audio >= 20 && f->p[0].rx_bad == 0);
    assert_int_equal(atomic_load(&st->srtp_auth_failures), 0);
}

static void the_packet_io_is_refused_once_legs_are_open_on_sockets(void **state)
{
    (void)state;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct dp_media *m = dp_media_create(1, epfd, TAG);
    assert_non_null(m);
    struct dp_media_leg_params lp = {.conf_key = 1, .local_address = "127.0.0.1"};
    lp.audio.enabled = true;
    lp.audio.local_port = free_pair();
    lp.audio.rtcp_mux = true;
    lp.audio.codec = DP_CODEC_PCMU;
    uint32_t leg = 0;
    char why[200];
    assert_int_equal(dp_media_leg_open(m, &lp, &leg, why, sizeof why), DP_MEDIA_OK);
    struct loop_io io = {.epfd = -1};
    struct dpk_pktio pio = {.io = &io,
                            .open = io_open,
                            .close = io_close,
                            .tx_slot = io_tx_slot,
                            .tx_commit = io_tx_commit,
                            .tx_flush = io_tx_flush};
    assert_int_equal(dp_media_set_pktio(m, &pio), -1);
    struct dpk_pktio half = pio;
    half.tx_flush = NULL;
    assert_int_equal(dp_media_set_pktio(NULL, &pio), -1);
    dp_media_leg_close(m, leg);
    assert_int_equal(dp_media_set_pktio(m, &half), -1);
    assert_int_equal(dp_media_set_pktio(m, &pio), 0);
    dp_media_free(m);
    close(epfd);
}

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            srtp_participants_hear_each_other_through_the_packet_io_and_no_socket_of_its_own, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            closing_a_leg_closes_its_ports_and_later_datagrams_for_it_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(the_backends_port_errors_become_dp_medias_results, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_backend_without_buffers_counts_lost_sends_and_recovers,
                                        setup, teardown),
        cmocka_unit_test(the_packet_io_is_refused_once_legs_are_open_on_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
