#include "dp_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dp_sock_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

const char *dp_sock_ntop(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

static int open_bound(int type, const char *ip, uint16_t port, int reuseport, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    const char *tname = type == SOCK_DGRAM ? "udp" : "tcp";
    if (dp_sock_addr(ip, port, &ss, &sl) != 0) {
        snprintf(err, errlen, "%s %s:%u: not an IP address", tname, ip, port);
        return -1;
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s:%u: socket: %s", tname, ip, port, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        snprintf(err, errlen, "%s %s:%u: SO_REUSEPORT: %s", tname, ip, port, strerror(errno));
        goto fail;
    }
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        snprintf(err, errlen, "%s %s:%u: %s", tname, ip, port, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

int dp_sock_probe(int type, const char *ip, uint16_t port, char *err, size_t errlen)
{
    int fd = open_bound(type, ip, port, 0, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int dp_sock_listen(int type, const char *ip, uint16_t port, char *err, size_t errlen)
{
    int fd = open_bound(type, ip, port, 1, err, errlen);
    if (fd < 0)
        return -1;
    if (type == SOCK_STREAM) {
        if (listen(fd, 1024) != 0) {
            snprintf(err, errlen, "tcp %s:%u: listen: %s", ip, port, strerror(errno));
            close(fd);
            return -1;
        }
    } else {
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    return fd;
}
