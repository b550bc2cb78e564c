/*
 * The floor of benches/ws's fan-out: the least a server can do to hand one Redis message to
 * every connected WebSocket, so that sdsim and the Node peer can be read against what the
 * machine itself costs (on loopback the sender's write also pays for the receiver's TCP
 * processing). One thread, one epoll loop, one write() per socket per event, no timers, no
 * pings, no per-connection state beyond a byte. Built by run.sh with cc -O2.
 *
 * It accepts connections on 127.0.0.1:PORT, answers the upgrade request with a 101 (the
 * Sec-WebSocket-Accept is not computed: the bench's client does not check it), answers the
 * first frame, whatever it is, with {"type":"auth_ok",...}, and ignores every later frame.
 * It subscribes to CHANNEL on Redis (REDIS_HOST:REDIS_PORT, RESP by hand) and sends each
 * message's payload, as it is (an event envelope: it carries the same "seq" and is about
 * the size of sdsim's frame), as one text frame to every authenticated socket.
 *
 * Prints "ready PORT" once listening and subscribed.
 *
 * Arguments: floor PORT REDIS_HOST REDIS_PORT CHANNEL
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NONE = 0, UPGRADE, AUTH, READY };

static unsigned char *state; /* by fd */
static int max_fd, top_fd;
static char rbuf[1 << 16];
static char *sub; /* unparsed bytes from Redis */
static size_t sublen, subcap;
static unsigned char frame[1 << 16];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Sends payload[0..n) to every ready socket as one text frame. */
static void fan_out(const char *payload, size_t n)
{
    size_t h;
    if (n + 10 > sizeof frame)
        return;
    frame[0] = 0x81;
    if (n < 126) {
        frame[1] = n;
        h = 2;
    } else {
        frame[1] = 126;
        frame[2] = n >> 8;
        frame[3] = n & 0xff;
        h = 4;
    }
    memcpy(frame + h, payload, n);
    for (int fd = 0; fd <= top_fd; fd++) {
        if (state[fd] == READY)
            (void)!send(fd, frame, h + n, MSG_NOSIGNAL);
    }
}

/* Reads "$<len>\r\n<bytes>\r\n" at p; returns the bytes' start and sets *len and *next. */
static const char *bulk(const char *p, const char *end, long *len, const char **next)
{
    if (p >= end || *p != '$')
        return NULL;
    const char *eol = memmem(p, end - p, "\r\n", 2);
    if (!eol)
        return NULL;
    *len = strtol(p + 1, NULL, 10);
    const char *data = eol + 2;
    if (end - data < *len + 2)
        return NULL;
    *next = data + *len + 2;
    return data;
}

/* Parses whole "message" pushes out of sub; keeps what is incomplete. */
static void on_redis(void)
{
    const char *p = sub, *end = sub + sublen;
    for (;;) {
        if (p >= end || *p != '*')
            break;
        const char *eol = memmem(p, end - p, "\r\n", 2);
        if (!eol)
            break;
        long parts = strtol(p + 1, NULL, 10);
        const char *q = eol + 2;
        const char *item[3] = {0};
        long len[3] = {0};
        int ok = 1;
        for (long i = 0; i < parts; i++) {
            long l;
            const char *next;
            const char *d = bulk(q, end, &l, &next);
            if (!d) {
                /* a ":1" (subscribe count) or an incomplete push */
                if (q < end && *q == ':') {
                    const char *e2 = memmem(q, end - q, "\r\n", 2);
                    if (!e2) { ok = 0; break; }
                    q = e2 + 2;
                    continue;
                }
                ok = 0;
                break;
            }
            if (i < 3) {
                item[i] = d;
                len[i] = l;
            }
            q = next;
        }
        if (!ok)
            break;
        if (parts == 3 && len[0] == 7 && memcmp(item[0], "message", 7) == 0)
            fan_out(item[2], len[2]);
        p = q;
    }
    sublen = end - p;
    memmove(sub, p, sublen);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: floor PORT REDIS_HOST REDIS_PORT CHANNEL\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fd = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
    state = calloc(max_fd, 1);
    subcap = 1 << 16;
    sub = malloc(subcap);

    int one = 1;
    int rs = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ra = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &ra.sin_addr) != 1)
        die("redis host (an IPv4 address)");
    if (connect(rs, (struct sockaddr *)&ra, sizeof ra) != 0)
        die("connect to redis");
    char cmd[1024];
    int cn = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(argv[4]),
                      argv[4]);
    if (write(rs, cmd, cn) != cn)
        die("subscribe");
    ssize_t r = read(rs, sub, subcap); /* the subscribe confirmation */
    if (r <= 0 || sub[0] != '*')
        die("subscribe answer");
    sublen = 0;

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    la.sin_addr.s_addr = htonl(0x7f000001u);
    if (bind(ls, (struct sockaddr *)&la, sizeof la) != 0 || listen(ls, 4096) != 0)
        die("listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    ev.data.fd = rs;
    epoll_ctl(ep, EPOLL_CTL_ADD, rs, &ev);
    printf("ready %s\n", argv[1]);
    fflush(stdout);

    static const char upgrade[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    static const char ok[] = "\x81\x31{\"type\":\"auth_ok\",\"user_id\":\"b\",\"session_id\":\"s\"}";
    struct epoll_event evs[1024];
    for (;;) {
        int k = epoll_wait(ep, evs, 1024, -1);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= max_fd) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    state[c] = UPGRADE;
                    if (c > top_fd)
                        top_fd = c;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            if (fd == rs) {
                if (sublen == subcap) {
                    subcap *= 2;
                    sub = realloc(sub, subcap);
                }
                r = read(rs, sub + sublen, subcap - sublen);
                if (r <= 0) {
                    fprintf(stderr, "floor: redis went away\n");
                    return 1;
                }
                sublen += r;
                on_redis();
                continue;
            }
            r = read(fd, rbuf, sizeof rbuf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                state[fd] = NONE;
                close(fd);
                continue;
            }
            if (state[fd] == UPGRADE) {
                const char *e = memmem(rbuf, r, "\r\n\r\n", 4);
                if (!e) { /* the client writes its request whole */
                    state[fd] = NONE;
                    close(fd);
                    continue;
                }
                (void)!send(fd, upgrade, sizeof upgrade - 1, MSG_NOSIGNAL);
                state[fd] = AUTH;
                if (e + 4 == rbuf + r)
                    continue; /* the auth frame comes next */
            }
            if (state[fd] == AUTH) {
                (void)!send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL);
                state[fd] = READY;
            }
        }
    }
}
