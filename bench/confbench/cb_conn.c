/* confbench TCP and TLS connections (see cb_engine_int.h).
 *
 * A connection belongs to one worker. It is opened on demand (non-blocking connect,
 * then the TLS handshake over a socket BIO), buffers what calls send while it is not
 * up, frames what arrives with dp_frame_next() and hands every message to
 * cb_handle_message(). When it fails, every call on it fails with the reason. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cb_engine_int.h"

/* ------------------------------------------------------------------------ connections */

static void conn_events(cb_worker_t *w, cb_conn_t *cn, bool want_out)
{
    if (cn->fd < 0 || cn->out_armed == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                             .data.u64 = cb_ev_data(EV_CONN, (uint32_t)(cn - w->conns), cn->gen)};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, cn->fd, &ev);
    cn->out_armed = want_out;
}

void cb_conn_close(cb_worker_t *w, cb_conn_t *cn)
{
    (void)w;
    if (cn->ssl) {
        if (cn->state == CN_UP)
            SSL_shutdown(cn->ssl);
        SSL_free(cn->ssl);
        cn->ssl = NULL;
    }
    if (cn->fd >= 0)
        close(cn->fd);
    cn->fd = -1;
    cn->state = CN_CLOSED;
    cn->gen++;
    cn->tseq++;
    cn->in_len = 0;
    cn->out_len = 0;
    cn->out_armed = false;
    memset(&cn->fst, 0, sizeof(cn->fst));
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -1;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

/* Writes out what is buffered. Returns 0, or -1 after the connection failed. */
static int conn_flush(cb_worker_t *w, cb_conn_t *cn)
{
    size_t off = 0;
    while (off < cn->out_len) {
        ssize_t n;
        if (cn->ssl) {
            ERR_clear_error();
            int r = SSL_write(cn->ssl, cn->out + off, (int)(cn->out_len - off));
            if (r <= 0) {
                int err = SSL_get_error(cn->ssl, r);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
                    break;
                cb_note(w->e, CB_FAIL_CLOSED, "TLS write to %s failed",
                        w->e->targets[cn->target].text);
                cb_conn_fail(w, cn, CB_FAIL_CLOSED);
                return -1;
            }
            n = r;
        } else {
            n = send(cn->fd, cn->out + off, cn->out_len - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                cb_note(w->e, CB_FAIL_CLOSED, "send to %s failed: %s",
                        w->e->targets[cn->target].text, strerror(errno));
                cb_conn_fail(w, cn, CB_FAIL_CLOSED);
                return -1;
            }
        }
        off += (size_t)n;
    }
    if (off) {
        memmove(cn->out, cn->out + off, cn->out_len - off);
        cn->out_len -= off;
    }
    conn_events(w, cn, cn->out_len > 0);
    return 0;
}

static void conn_up(cb_worker_t *w, cb_conn_t *cn)
{
    cn->state = CN_UP;
    cn->tseq++; /* cancels the connect timer */
    if (cn->ssl) {
        CB_ADD(w->c.handshakes, 1);
        cb_hist_record(&w->c.lat[CB_LAT_HANDSHAKE], cb_now_us() - cn->t_start);
    }
    conn_flush(w, cn);
}

static void tls_failed(cb_worker_t *w, cb_conn_t *cn, int ret)
{
    cb_engine_t *e = w->e;
    const cb_addr_t *t = &e->targets[cn->target];
    long vr = SSL_get_verify_result(cn->ssl);
    if (vr != X509_V_OK) {
        unsigned code = vr >= 0 && vr < CB_VERIFY_CODES ? (unsigned)vr : 0;
        CB_ADD(w->c.tls_verify[code], 1);
        if (!atomic_exchange(&e->verify_seen[code], true)) {
            fprintf(stderr,
                    "confbench: TLS handshake with %s failed: certificate verify failed: %s "
                    "(X509 error %ld)\n",
                    t->text, X509_verify_cert_error_string(vr), vr);
        }
        cb_note_quiet(e, CB_FAIL_TLS, "TLS handshake with %s failed: certificate verify failed: %s",
                      t->text, X509_verify_cert_error_string(vr));
    } else {
        char buf[256] = "";
        unsigned long le = ERR_peek_last_error();
        if (le)
            ERR_error_string_n(le, buf, sizeof(buf));
        else if (ret == 0 || errno == 0)
            snprintf(buf, sizeof(buf), "connection closed during the handshake");
        else
            snprintf(buf, sizeof(buf), "%s", strerror(errno));
        CB_ADD(w->c.tls_verify[0], 1);
        cb_note(e, CB_FAIL_TLS, "TLS handshake with %s failed: %s", t->text, buf);
    }
    cb_conn_fail(w, cn, CB_FAIL_TLS);
}

static void conn_handshake(cb_worker_t *w, cb_conn_t *cn)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(cn->ssl);
    if (r == 1) {
        conn_up(w, cn);
        return;
    }
    int err = SSL_get_error(cn->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        conn_events(w, cn, false);
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        conn_events(w, cn, true);
        return;
    }
    tls_failed(w, cn, r);
}

static int conn_start_tls(cb_worker_t *w, cb_conn_t *cn)
{
    cb_engine_t *e = w->e;
    const cb_addr_t *t = &e->targets[cn->target];
    cn->ssl = SSL_new(e->ssl);
    if (!cn->ssl || SSL_set_fd(cn->ssl, cn->fd) != 1)
        return -1;
    SSL_set_connect_state(cn->ssl);
    const char *name = e->o.tls_name[0] ? e->o.tls_name : t->host;
    const char *sni = e->o.sni[0] ? e->o.sni : name;
    if (sni[0] && !strchr(sni, ':'))
        SSL_set_tlsext_host_name(cn->ssl, sni);
    if (!e->o.no_verify) {
        if (name[0]) {
            if (SSL_set1_host(cn->ssl, name) != 1)
                return -1;
        } else {
            /* A literal address: the certificate must carry it as an IP SAN. */
            char host[64];
            unsigned port;
            cb_sa_host(&t->sa, host, sizeof(host), &port);
            char *h = host;
            if (h[0] == '[') {
                h++;
                h[strlen(h) - 1] = 0;
            }
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cn->ssl), h) != 1)
                return -1;
        }
    }
    cn->state = CN_HANDSHAKE;
    conn_handshake(w, cn);
    return 0;
}

static void conn_connected(cb_worker_t *w, cb_conn_t *cn)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        cb_fail_t r = soerr == ECONNREFUSED ? CB_FAIL_REFUSED : CB_FAIL_CONNECT;
        cb_note(w->e, r, "connect to %s failed: %s", w->e->targets[cn->target].text,
                strerror(soerr));
        cb_conn_fail(w, cn, r);
        return;
    }
    CB_ADD(w->c.connects, 1);
    if (w->e->ssl) {
        if (conn_start_tls(w, cn)) {
            cb_note(w->e, CB_FAIL_LOCAL, "cannot set up TLS for %s",
                    w->e->targets[cn->target].text);
            cb_conn_fail(w, cn, CB_FAIL_LOCAL);
        }
        return;
    }
    conn_up(w, cn);
}

/* Opens the connection (non-blocking connect). Returns 0, or -1 after failing it. */
int cb_conn_open(cb_worker_t *w, cb_conn_t *cn)
{
    cb_engine_t *e = w->e;
    const cb_addr_t *t = &e->targets[cn->target];
    cn->fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (cn->fd < 0) {
        cb_note(e, CB_FAIL_LOCAL, "socket() for %s failed: %s", t->text, strerror(errno));
        cb_conn_fail(w, cn, CB_FAIL_LOCAL);
        return -1;
    }
    int one = 1;
    setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (e->nbinds) {
        const struct sockaddr_storage *b = &e->binds[cn->bind];
        if (b->ss_family == t->sa.ss_family &&
            bind(cn->fd, (const struct sockaddr *)b, e->bind_len[cn->bind]) != 0) {
            char h[64];
            unsigned p;
            cb_sa_host(b, h, sizeof(h), &p);
            cb_note(e, CB_FAIL_LOCAL, "bind to %s failed: %s", h, strerror(errno));
            cb_conn_fail(w, cn, CB_FAIL_LOCAL);
            return -1;
        }
    }
    cn->t_start = cb_now_us();
    cn->gen++;
    int rc = connect(cn->fd, (const struct sockaddr *)&t->sa, t->len);
    if (rc != 0 && errno != EINPROGRESS) {
        cb_fail_t r = errno == ECONNREFUSED ? CB_FAIL_REFUSED : CB_FAIL_CONNECT;
        cb_note(e, r, "connect to %s failed: %s", t->text, strerror(errno));
        cb_conn_fail(w, cn, r);
        return -1;
    }
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    if (getsockname(cn->fd, (struct sockaddr *)&local, &ll) == 0)
        cb_sa_host(&local, cn->local_host, sizeof(cn->local_host), &cn->local_port);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                             .data.u64 = cb_ev_data(EV_CONN, (uint32_t)(cn - w->conns), cn->gen)};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, cn->fd, &ev) != 0) {
        cb_note(e, CB_FAIL_LOCAL, "epoll_ctl failed: %s", strerror(errno));
        cb_conn_fail(w, cn, CB_FAIL_LOCAL);
        return -1;
    }
    cn->out_armed = true;
    cn->state = CN_CONNECTING;
    cn->tseq++;
    cb_timer_push(w, cn->t_start + (uint64_t)e->o.timeout_ms * 1000u, TK_CONN,
                  (uint32_t)(cn - w->conns), cn->tseq);
    if (rc == 0)
        conn_connected(w, cn);
    return 0;
}

/* Fails every call that uses the connection, then closes it. */
void cb_conn_fail(cb_worker_t *w, cb_conn_t *cn, cb_fail_t r)
{
    int idx = (int)(cn - w->conns);
    cb_conn_close(w, cn);
    for (unsigned i = 0; i < w->ncalls && cn->ncalls; i++) {
        cb_call_t *c = &w->calls[i];
        if (c->state != CS_FREE && c->conn == idx)
            cb_call_fail(w, c, r);
    }
}

static void conn_read(cb_worker_t *w, cb_conn_t *cn)
{
    uint32_t gen = cn->gen;
    for (int rounds = 0; rounds < 16; rounds++) {
        if (cn->in_cap - cn->in_len < 16384) {
            size_t nc = cn->in_cap ? cn->in_cap * 2 : 32768;
            if (nc > 4 * CB_MAX_MSG && cn->in_cap >= 4 * CB_MAX_MSG)
                break;
            char *b = realloc(cn->in, nc);
            if (!b)
                break;
            cn->in = b;
            cn->in_cap = nc;
        }
        ssize_t n;
        if (cn->ssl) {
            ERR_clear_error();
            int r = SSL_read(cn->ssl, cn->in + cn->in_len, (int)(cn->in_cap - cn->in_len));
            if (r <= 0) {
                int err = SSL_get_error(cn->ssl, r);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                    break;
                n = err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
                if (n < 0)
                    errno = ECONNRESET;
            } else {
                n = r;
            }
        } else {
            n = recv(cn->fd, cn->in + cn->in_len, cn->in_cap - cn->in_len, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
        }
        if (n <= 0) {
            if (cn->ncalls)
                cb_note(w->e, CB_FAIL_CLOSED, "connection to %s %s with calls in progress",
                        w->e->targets[cn->target].text, n == 0 ? "closed by the peer" : "reset");
            cb_conn_fail(w, cn, CB_FAIL_CLOSED);
            return;
        }
        cn->in_len += (size_t)n;
        /* Frame and hand over every whole message. */
        size_t off = 0;
        while (off < cn->in_len) {
            size_t len = 0;
            dp_frame_result_t fr =
                dp_frame_next(cn->in + off, cn->in_len - off, CB_MAX_MSG, &cn->fst, &len);
            if (fr == DP_FRAME_PARTIAL)
                break;
            memset(&cn->fst, 0, sizeof(cn->fst));
            if (fr == DP_FRAME_MESSAGE) {
                cb_handle_message(w, cn->in + off, len, (int)(cn - w->conns), 0, NULL, 0);
                if (cn->gen != gen || cn->fd < 0)
                    return; /* closed while handling */
            } else if (fr == DP_FRAME_PING) {
                buf_append(&cn->out, &cn->out_len, &cn->out_cap, "\r\n", 2);
                if (conn_flush(w, cn))
                    return;
            } else if (fr != DP_FRAME_PONG) {
                cb_note(w->e, CB_FAIL_PROTOCOL, "unframeable message from %s (error %d)",
                        w->e->targets[cn->target].text, (int)fr);
                cb_conn_fail(w, cn, CB_FAIL_PROTOCOL);
                return;
            }
            off += len;
        }
        if (off) {
            memmove(cn->in, cn->in + off, cn->in_len - off);
            cn->in_len -= off;
        }
        if (!cn->ssl && (size_t)n < 16384)
            break;
    }
}

void cb_conn_event(cb_worker_t *w, cb_conn_t *cn, uint32_t events)
{
    uint32_t gen = cn->gen;
    if (cn->state == CN_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_connected(w, cn);
        return;
    }
    if (cn->state == CN_HANDSHAKE) {
        conn_handshake(w, cn);
        if (cn->gen != gen || cn->state != CN_UP)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(w, cn);
    if (cn->gen == gen && cn->state == CN_UP && (events & EPOLLOUT))
        conn_flush(w, cn);
}

/* Hands a request to a call's connection, opening it when needed. */
int cb_conn_send(cb_worker_t *w, cb_conn_t *cn, const char *buf, size_t len)
{
    if (cn->state == CN_CLOSED && cb_conn_open(w, cn))
        return -1;
    if (buf_append(&cn->out, &cn->out_len, &cn->out_cap, buf, len)) {
        cb_conn_fail(w, cn, CB_FAIL_LOCAL);
        return -1;
    }
    if (cn->state == CN_UP)
        return conn_flush(w, cn);
    return 0;
}

int cb_tls_setup(cb_engine_t *e, char *err, size_t errlen)
{
    const cb_opts_t *o = &e->o;
    e->ssl = SSL_CTX_new(TLS_client_method());
    if (!e->ssl) {
        snprintf(err, errlen, "TLS: cannot create a context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(e->ssl, TLS1_2_VERSION);
    SSL_CTX_set_mode(e->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(e->ssl, SSL_SESS_CACHE_OFF);
    char ebuf[256];
    if (o->no_verify) {
        SSL_CTX_set_verify(e->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(e->ssl, SSL_VERIFY_PEER, NULL);
        int ok = o->ca[0] ? SSL_CTX_load_verify_locations(e->ssl, o->ca, NULL)
                          : SSL_CTX_set_default_verify_paths(e->ssl);
        if (ok != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
            snprintf(err, errlen, "TLS: cannot load CA certificates from %s: %s",
                     o->ca[0] ? o->ca : "the system store", ebuf);
            return -1;
        }
    }
    if (o->cert[0]) {
        if (SSL_CTX_use_certificate_chain_file(e->ssl, o->cert) != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
            snprintf(err, errlen, "TLS: cannot load the certificate %s: %s", o->cert, ebuf);
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(e->ssl, o->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(e->ssl) != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
            snprintf(err, errlen, "TLS: cannot use the key %s with %s: %s", o->key, o->cert, ebuf);
            return -1;
        }
    }
    return 0;
}
