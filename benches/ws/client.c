/*
 * The client of benches/ws: many WebSocket connections in one single-threaded epoll loop,
 * driven by bench.py over stdin/stdout. Built by run.sh with the system's C compiler (cc -O2).
 *
 * Why C: the bench measures how fast a server hands one event to 10,000 sockets, on a
 * machine whose two cores the server and the client share. A client that spends 20-50 us
 * of Python per frame would measure itself. Here a frame costs one recvmsg and a memmem.
 *
 * Each connection: non-blocking connect from 127.0.0.x (bind with IP_BIND_ADDRESS_NO_PORT
 * before connect, so every source address has its own ephemeral ports toward a server),
 * the HTTP/1.1 upgrade to PATH, then the first frame {"type":"auth","token":TOKEN}; it is
 * ready once a text frame containing "auth_ok" arrives. Pings are answered with pongs.
 * Every later text frame containing "seq":N is recorded: (N, server port, the time recvmsg
 * returned, and the kernel's receive timestamp of the data (SO_TIMESTAMPNS) converted to
 * CLOCK_MONOTONIC), so that the time a frame waited in the socket for this client is known
 * and can be told apart from the server's.
 *
 * Commands (one a line on stdin; every answer ends with a line "end"):
 *   open PORT N CONCURRENCY TIMEOUT_S   open N connections to 127.0.0.1:PORT, at most
 *                                       CONCURRENCY not yet ready at a time; answers
 *                                       "opened ready=R failed=F pending=P ms=T" and
 *                                       "err COUNT MESSAGE" lines (failures, by cause)
 *   close PORT N                        close N ready connections to PORT (close frame 1000,
 *                                       then close); answers "closed n=K"
 *   count                               "count PORT ready=R lost=L" for each port, then
 *                                       "err COUNT MESSAGE" for what closed ready sockets
 *   dump PATH                           write the records to PATH (packed: int32 seq,
 *                                       int32 port, int64 read ns, int64 kernel ns) and
 *                                       forget them; answers "dumped n=K"
 *   quit
 *
 * Arguments: wsclient PATH TOKEN SOURCES FIRST_SOURCE_INDEX
 * (connections use 127.0.0.(1 + (FIRST_SOURCE_INDEX + k) % SOURCES)).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { FREE = 0, CONNECTING, HANDSHAKE, AUTHING, READY };

struct conn {
    uint8_t state;
    uint16_t port;
    char *buf; /* bytes received and not yet parsed */
    uint32_t len, cap;
    int64_t started;
};

struct record {
    int32_t seq;
    int32_t port;
    int64_t t_read;
    int64_t t_kernel;
} __attribute__((packed));

static struct conn *conns;
static int max_fd;
static int ep;
static const char *ws_path;
static const char *token;
static int sources;
static unsigned long next_source;

static struct record *records;
static size_t nrecords, caprecords;

#define MAX_ERRS 48
struct err { char msg[160]; long count; };
static struct err open_errs[MAX_ERRS], lost_errs[MAX_ERRS];

#define MAX_PORTS 8
static struct { int port; long ready; long lost; } ports[MAX_PORTS];

/* The open in progress, if any. */
static struct {
    int active;
    int port;
    long want, started, ready, failed, conc, inflight;
    int64_t t0, deadline;
} op;

static unsigned char rbuf[1 << 16];
static int64_t real_minus_mono;

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void add_err(struct err *tab, const char *msg)
{
    for (int i = 0; i < MAX_ERRS; i++) {
        if (tab[i].count && strcmp(tab[i].msg, msg) == 0) {
            tab[i].count++;
            return;
        }
    }
    for (int i = 0; i < MAX_ERRS; i++) {
        if (!tab[i].count) {
            snprintf(tab[i].msg, sizeof tab[i].msg, "%s", msg);
            tab[i].count = 1;
            return;
        }
    }
    tab[MAX_ERRS - 1].count++; /* the last slot takes the overflow */
}

static void print_errs(struct err *tab)
{
    for (int i = 0; i < MAX_ERRS; i++) {
        if (tab[i].count) {
            printf("err %ld %s\n", tab[i].count, tab[i].msg);
            tab[i].count = 0;
        }
    }
}

static int port_slot(int port)
{
    for (int i = 0; i < MAX_PORTS; i++) {
        if (ports[i].port == port)
            return i;
    }
    for (int i = 0; i < MAX_PORTS; i++) {
        if (!ports[i].port) {
            ports[i].port = port;
            return i;
        }
    }
    fprintf(stderr, "wsclient: too many ports\n");
    exit(1);
}

/* A masked client frame (RFC 6455 5.3); small frames are written whole or not at all. */
static int send_frame(int fd, int opcode, const void *payload, size_t n)
{
    unsigned char f[16 + 4096];
    size_t h = 0;
    if (n > 4096)
        return -1;
    f[h++] = 0x80 | opcode;
    if (n < 126) {
        f[h++] = 0x80 | n;
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = n >> 8;
        f[h++] = n & 0xff;
    }
    uint32_t key = (uint32_t)rand();
    unsigned char *k = f + h;
    memcpy(k, &key, 4);
    h += 4;
    const unsigned char *p = payload;
    for (size_t i = 0; i < n; i++)
        f[h + i] = p[i] ^ k[i & 3];
    ssize_t w = send(fd, f, h + n, MSG_NOSIGNAL);
    return w == (ssize_t)(h + n) ? 0 : -1;
}

static void drop(int fd)
{
    struct conn *c = &conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* A connection that never got ready. */
static void fail(int fd, const char *why)
{
    add_err(open_errs, why);
    if (op.active && conns[fd].port == op.port) {
        op.failed++;
        op.inflight--;
    }
    drop(fd);
}

/* A ready connection that went away. */
static void lost(int fd, const char *why)
{
    int s = port_slot(conns[fd].port);
    ports[s].ready--;
    ports[s].lost++;
    add_err(lost_errs, why);
    drop(fd);
}

static void start_one(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        char m[96];
        snprintf(m, sizeof m, "socket: %s", strerror(errno));
        add_err(open_errs, m);
        op.failed++;
        return;
    }
    if (fd >= max_fd) {
        close(fd);
        add_err(open_errs, "socket: fd over the client's limit");
        op.failed++;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(next_source++ % sources));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        char m[96];
        snprintf(m, sizeof m, "bind: %s", strerror(errno));
        add_err(open_errs, m);
        close(fd);
        op.failed++;
        return;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(op.port)};
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    struct conn *c = &conns[fd];
    memset(c, 0, sizeof *c);
    c->port = op.port;
    c->started = now_ns(CLOCK_MONOTONIC);
    op.inflight++;
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        char m[96];
        snprintf(m, sizeof m, "connect: %s", strerror(errno));
        c->state = CONNECTING;
        struct epoll_event ev = {.events = 0, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fail(fd, m);
        return;
    }
    c->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void on_connected(int fd)
{
    int e = 0;
    socklen_t l = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
    if (e) {
        char m[96];
        snprintf(m, sizeof m, "connect: %s", strerror(e));
        fail(fd, m);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     ws_path, conns[fd].port);
    if (send(fd, req, n, MSG_NOSIGNAL) != n) {
        char m[96];
        snprintf(m, sizeof m, "send upgrade: %s", strerror(errno));
        fail(fd, m);
        return;
    }
    conns[fd].state = HANDSHAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void keep(struct conn *c, const unsigned char *p, size_t n)
{
    if (c->len + n > c->cap) {
        uint32_t cap = c->cap ? c->cap : 512;
        while (cap < c->len + n)
            cap *= 2;
        c->buf = realloc(c->buf, cap);
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

static void record(int port, const unsigned char *p, size_t n, int64_t t_read, int64_t t_kernel)
{
    const unsigned char *s = memmem(p, n, "\"seq\":", 6);
    if (!s)
        return;
    s += 6;
    const unsigned char *end = p + n;
    while (s < end && *s == ' ')
        s++;
    long v = 0;
    while (s < end && *s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    if (nrecords == caprecords) {
        caprecords = caprecords ? caprecords * 2 : 1 << 16;
        records = realloc(records, caprecords * sizeof *records);
    }
    records[nrecords++] = (struct record){(int32_t)v, port, t_read, t_kernel};
}

/* Parses the frames in p[0..n); returns bytes used, or -1 if fd was dropped. */
static long frames(int fd, const unsigned char *p, size_t n, int64_t t_read, int64_t t_kernel)
{
    struct conn *c = &conns[fd];
    size_t at = 0;
    while (n - at >= 2) {
        const unsigned char *f = p + at;
        int opcode = f[0] & 0x0f;
        uint64_t len = f[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n - at < 4)
                break;
            len = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (n - at < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | f[2 + i];
            h = 10;
        }
        if (f[1] & 0x80)
            h += 4; /* a server must not mask; skip the key if it does */
        if (n - at < h + len)
            break;
        const unsigned char *pl = f + h;
        at += h + len;
        switch (opcode) {
        case 1: /* text */
            if (c->state == READY) {
                record(c->port, pl, len, t_read, t_kernel);
            } else if (c->state == AUTHING) {
                if (memmem(pl, len, "\"auth_ok\"", 9)) {
                    c->state = READY;
                    ports[port_slot(c->port)].ready++;
                    if (op.active && c->port == op.port) {
                        op.ready++;
                        op.inflight--;
                    }
                } else {
                    char m[160];
                    snprintf(m, sizeof m, "first answer: %.*s", (int)(len > 120 ? 120 : len), pl);
                    fail(fd, m);
                    return -1;
                }
            }
            break;
        case 8: { /* close */
            char m[160];
            int code = len >= 2 ? (pl[0] << 8) | pl[1] : 1005;
            snprintf(m, sizeof m, "closed by server %d %.*s", code,
                     (int)(len > 2 ? (len - 2 > 100 ? 100 : len - 2) : 0), pl + 2);
            if (c->state == READY)
                lost(fd, m);
            else
                fail(fd, m);
            return -1;
        }
        case 9: /* ping */
            send_frame(fd, 0xA, pl, len);
            break;
        default:
            break;
        }
    }
    return (long)at;
}

static void on_readable(int fd, int64_t t_read_hint)
{
    struct conn *c = &conns[fd];
    struct iovec iov = {.iov_base = rbuf, .iov_len = sizeof rbuf};
    union { char buf[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    ssize_t r = recvmsg(fd, &msg, 0);
    int64_t t_read = now_ns(CLOCK_MONOTONIC);
    (void)t_read_hint;
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        char m[96];
        snprintf(m, sizeof m, "recv: %s", strerror(errno));
        if (c->state == READY)
            lost(fd, m);
        else
            fail(fd, m);
        return;
    }
    if (r == 0) {
        if (c->state == READY)
            lost(fd, "eof from server");
        else
            fail(fd, c->state == HANDSHAKE ? "eof before the upgrade answer" : "eof before auth_ok");
        return;
    }
    int64_t t_kernel = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            t_kernel = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - real_minus_mono;
        }
    }
    const unsigned char *p = rbuf;
    size_t n = (size_t)r;
    if (c->len) { /* join what was left over */
        keep(c, rbuf, n);
        p = (unsigned char *)c->buf;
        n = c->len;
    }
    size_t at = 0;
    if (c->state == HANDSHAKE) {
        const unsigned char *e = memmem(p, n, "\r\n\r\n", 4);
        if (!e) {
            if (p == rbuf)
                keep(c, p, n);
            if (c->len > 8192)
                fail(fd, "upgrade answer too long");
            return;
        }
        if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
            char m[160];
            const unsigned char *eol = memmem(p, n, "\r\n", 2);
            long l = eol ? eol - p : (long)n;
            snprintf(m, sizeof m, "upgrade refused: %.*s", (int)(l > 100 ? 100 : l), p);
            fail(fd, m);
            return;
        }
        at = (size_t)(e - p) + 4;
        char auth[4096];
        int an = snprintf(auth, sizeof auth, "{\"type\":\"auth\",\"token\":\"%s\"}", token);
        if (send_frame(fd, 1, auth, an) != 0) {
            fail(fd, "send auth frame failed");
            return;
        }
        c->state = AUTHING;
    }
    long used = frames(fd, p + at, n - at, t_read, t_kernel);
    if (used < 0)
        return;
    at += used;
    if (p == rbuf) {
        if (at < n)
            keep(c, p + at, n - at);
    } else {
        memmove(c->buf, c->buf + at, n - at);
        c->len = n - at;
    }
}

static void finish_open(void)
{
    int64_t t = now_ns(CLOCK_MONOTONIC);
    /* what is still pending has failed */
    long pending = 0;
    for (int fd = 0; fd < max_fd; fd++) {
        if (conns[fd].state && conns[fd].state != READY && conns[fd].port == op.port) {
            const char *why = conns[fd].state == CONNECTING ? "timeout connecting"
                              : conns[fd].state == HANDSHAKE ? "timeout waiting for the upgrade"
                                                             : "timeout waiting for auth_ok";
            add_err(open_errs, why);
            drop(fd);
            pending++;
        }
    }
    printf("opened ready=%ld failed=%ld pending=%ld ms=%.0f\n", op.ready, op.failed, pending,
           (t - op.t0) / 1e6);
    print_errs(open_errs);
    printf("end\n");
    fflush(stdout);
    op.active = 0;
}

static void command(char *line)
{
    char path[4096];
    int port;
    long n, conc;
    double timeout;
    if (sscanf(line, "open %d %ld %ld %lf", &port, &n, &conc, &timeout) == 4) {
        op.active = 1;
        op.port = port;
        op.want = n;
        op.started = op.ready = op.failed = op.inflight = 0;
        op.conc = conc;
        op.t0 = now_ns(CLOCK_MONOTONIC);
        op.deadline = op.t0 + (int64_t)(timeout * 1e9);
        port_slot(port);
        return;
    }
    if (sscanf(line, "close %d %ld", &port, &n) == 2) {
        long k = 0;
        int s = port_slot(port);
        for (int fd = max_fd - 1; fd >= 0 && k < n; fd--) {
            if (conns[fd].state == READY && conns[fd].port == port) {
                unsigned char code[2] = {1000 >> 8, 1000 & 0xff};
                send_frame(fd, 8, code, 2);
                drop(fd);
                ports[s].ready--;
                k++;
            }
        }
        printf("closed n=%ld\nend\n", k);
        fflush(stdout);
        return;
    }
    if (strncmp(line, "count", 5) == 0) {
        for (int i = 0; i < MAX_PORTS; i++) {
            if (ports[i].port)
                printf("count %d ready=%ld lost=%ld\n", ports[i].port, ports[i].ready, ports[i].lost);
        }
        print_errs(lost_errs);
        printf("end\n");
        fflush(stdout);
        return;
    }
    if (sscanf(line, "dump %4095s", path) == 1) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(records, sizeof *records, nrecords, f) != nrecords) {
            printf("dumped n=-1\nend\n");
        } else {
            printf("dumped n=%zu\nend\n", nrecords);
        }
        if (f)
            fclose(f);
        nrecords = 0;
        fflush(stdout);
        return;
    }
    if (strncmp(line, "quit", 4) == 0)
        exit(0);
    printf("unknown command\nend\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: wsclient PATH TOKEN SOURCES FIRST_SOURCE_INDEX\n");
        return 2;
    }
    ws_path = argv[1];
    token = argv[2];
    sources = atoi(argv[3]);
    next_source = strtoul(argv[4], NULL, 10);
    if (sources < 1)
        sources = 1;
    if (strlen(token) > 3500) {
        fprintf(stderr, "wsclient: token too long\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fd = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
    conns = calloc(max_fd, sizeof *conns);
    srand((unsigned)getpid());
    ep = epoll_create1(EPOLL_CLOEXEC);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event sev = {.events = EPOLLIN, .data.fd = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);

    char line[8192];
    size_t linelen = 0;
    struct epoll_event evs[1024];
    for (;;) {
        if (op.active) {
            while (op.started < op.want && op.inflight < op.conc) {
                op.started++;
                start_one();
            }
            if (op.ready + op.failed >= op.want || now_ns(CLOCK_MONOTONIC) > op.deadline)
                finish_open();
        }
        int k = epoll_wait(ep, evs, 1024, op.active ? 20 : 200);
        if (k < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        real_minus_mono = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == 0) {
                ssize_t r;
                while ((r = read(0, line + linelen, sizeof line - 1 - linelen)) > 0) {
                    linelen += r;
                    char *nl;
                    while ((nl = memchr(line, '\n', linelen))) {
                        *nl = 0;
                        command(line);
                        size_t rest = linelen - (nl + 1 - line);
                        memmove(line, nl + 1, rest);
                        linelen = rest;
                    }
                    if (linelen == sizeof line - 1)
                        linelen = 0;
                }
                if (r == 0)
                    return 0; /* the bench went away */
                continue;
            }
            struct conn *c = &conns[fd];
            if (!c->state)
                continue;
            if (c->state == CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    on_connected(fd);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(fd, 0);
        }
    }
}
