/*
 * loadgen.c - a fixed-rate (open-loop) HTTP/1.1 load generator for bench/run.
 *
 *   loadgen -p PORT -u PATH -f EVENTS.tsv -r RATE -d SECONDS [-c CONNS]
 *           [-o FIRST_LINE] [-H HOST] [-b ADDR] [-l LOG]
 *   loadgen -p PORT -u PATH -f EVENTS.tsv -n COUNT [-d SECONDS] [-c CONNS]
 *           [-o FIRST_LINE] [-H HOST] [-b ADDR]
 *
 * Sends the pre-signed events of EVENTS.tsv ("<Stripe-Signature>\t<body>"
 * per line, in order from FIRST_LINE, wrapping around) as POSTs to
 * 127.0.0.1:PORT, request i at exactly start + i / RATE, for SECONDS, over
 * up to CONNS keep-alive connections (one request in flight on each).
 *
 * Latency is measured from the time a request was due, not from when a
 * connection was free to send it: when the server falls behind, requests
 * wait here and that wait counts (no "coordinated omission"). wrk measures
 * the other way, which is why bench/run uses wrk only for throughput.
 *
 * With -n instead of -r, a closed loop, as fast as the server answers (a
 * flood, bench/flood): each connection sends its next request as soon as
 * the previous one was answered, until COUNT requests were sent and, with
 * -d, SECONDS have passed. Latency is then from send to answer; rate=0; a
 * second line "FLOOD start_ns=.. end_ns=.." gives the CLOCK_MONOTONIC times
 * of the first request and of the last answer.
 *
 * -b ADDR: connect from this local IPv4 address (another 127.x.y.z, to be
 * told apart by nginx's allow/deny).
 *
 * -l LOG (open loop): one line per answer, "<due> <latency> <status>", the
 * time the request was due in CLOCK_MONOTONIC ns, its latency in us: to
 * split one run into the time during a flood and the time around it.
 *
 * Prints one line:
 *   LOADGEN rate=R sent=N done=N achieved=R non2xx=N errors=N unfinished=N
 *           p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *
 * Why not h2load --rate: it sets how fast connections are opened, not
 * requests, and sends one body; wrk2 and hey are not packaged by Debian.
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX   (1024 * 1024)
#define IN_MAX    (64 * 1024)
#define DRAIN_NS  (5 * 1000000000LL)

typedef struct {
    const char  *sig;
    size_t       sig_len;
    const char  *body;
    size_t       body_len;
} line;

typedef struct {
    int       fd;
    int       busy;            /* a request is in flight */
    int       want_out;        /* EPOLLOUT registered */
    int64_t   due;             /* when its request was due (ns) */
    char     *out;
    size_t    out_len;
    size_t    out_off;
    char     *in;
    size_t    in_len;
} conn;

static const char  *path = "/";
static const char  *host = "127.0.0.1";
static const char  *bind_addr;
static int          port;
static int          epfd;
static line        *lines;
static size_t       nlines;

static uint64_t     non2xx, errors, done;
static int64_t      last_done;      /* when the last answer came */

static uint32_t    *lat;
static size_t       lat_cap;

static const char  *log_file;
static int64_t     *log_due;       /* -l: per answer, when it was due */
static uint16_t    *log_status;


static int64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static void
die(const char *what)
{
    perror(what);
    exit(2);
}


static void
load_lines(const char *file)
{
    int          fd;
    char        *p, *end, *nl, *tab;
    size_t       cap;
    struct stat  st;

    fd = open(file, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        die(file);
    }

    p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        die("mmap");
    }

    end = p + st.st_size;
    cap = 1024;
    lines = malloc(cap * sizeof(line));

    while (p < end) {
        nl = memchr(p, '\n', end - p);
        if (nl == NULL) {
            nl = end;
        }

        tab = memchr(p, '\t', nl - p);
        if (tab != NULL) {
            if (nlines == cap) {
                cap *= 2;
                lines = realloc(lines, cap * sizeof(line));
            }

            if (lines == NULL) {
                die("realloc");
            }

            lines[nlines].sig = p;
            lines[nlines].sig_len = tab - p;
            lines[nlines].body = tab + 1;
            lines[nlines].body_len = nl - tab - 1;
            nlines++;
        }

        p = nl + 1;
    }

    if (nlines == 0) {
        fprintf(stderr, "loadgen: no events in %s\n", file);
        exit(2);
    }
}


static void
conn_open(conn *c)
{
    int                  one = 1;
    struct sockaddr_in   sa;
    struct epoll_event   ev;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        die("socket");
    }

    if (bind_addr != NULL) {
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;

        if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
            fprintf(stderr, "loadgen: -b %s: not an IPv4 address\n",
                    bind_addr);
            exit(2);
        }

        if (bind(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
            die("bind");
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* blocking connect: done before the clock starts, or on a reconnect */
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        die("connect");
    }

    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);

    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl");
    }

    c->busy = 0;
    c->want_out = 0;
    c->in_len = 0;
}


static void
conn_reopen(conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_open(c);
}


static void
set_out(conn *c, int on)
{
    struct epoll_event  ev;

    if (c->want_out == on) {
        return;
    }

    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}


static void
conn_write(conn *c)
{
    ssize_t  n;

    while (c->out_off < c->out_len) {
        n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && errno == EAGAIN) {
            set_out(c, 1);
            return;
        }

        if (n <= 0) {
            errors++;
            c->busy = 0;
            conn_reopen(c);
            return;
        }

        c->out_off += n;
    }

    set_out(c, 0);
}


static void
conn_send(conn *c, const line *l, int64_t due)
{
    int  n;

    n = snprintf(c->out, OUT_MAX,
                 "POST %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Content-Type: application/json; charset=utf-8\r\n"
                 "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
                 "Stripe-Signature: %.*s\r\n"
                 "Content-Length: %zu\r\n"
                 "\r\n",
                 path, host, (int) l->sig_len, l->sig, l->body_len);

    if (n < 0 || (size_t) n + l->body_len > OUT_MAX) {
        fprintf(stderr, "loadgen: event too large\n");
        exit(2);
    }

    memcpy(c->out + n, l->body, l->body_len);
    c->out_len = n + l->body_len;
    c->out_off = 0;
    c->in_len = 0;
    c->busy = 1;
    c->due = due;

    conn_write(c);
}


/*
 * Length of the complete response at the start of buf, 0 if incomplete.
 * Content-Length and chunked bodies; *status gets the status code.
 */
static size_t
response_length(const char *buf, size_t len, int *status, int *close_after)
{
    const char  *hend, *p, *q, *eol;
    size_t       hlen, clen, off, chunk;
    int          chunked;

    hend = memmem(buf, len, "\r\n\r\n", 4);
    if (hend == NULL) {
        return 0;
    }

    hlen = hend + 4 - buf;
    *status = (len > 12) ? atoi(buf + 9) : 0;
    clen = 0;
    chunked = 0;
    *close_after = 0;

    for (p = buf; p < hend; p = eol + 2) {
        eol = memmem(p, hend + 2 - p, "\r\n", 2);
        if (eol == NULL) {
            break;
        }

        if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtoul(p + 15, NULL, 10);

        } else if (eol - p > 18
                   && strncasecmp(p, "Transfer-Encoding:", 18) == 0
                   && memmem(p, eol - p, "chunked", 7) != NULL)
        {
            chunked = 1;

        } else if (eol - p > 11 && strncasecmp(p, "Connection:", 11) == 0
                   && memmem(p, eol - p, "close", 5) != NULL)
        {
            *close_after = 1;
        }
    }

    if (!chunked) {
        return len >= hlen + clen ? hlen + clen : 0;
    }

    off = hlen;

    for ( ;; ) {
        q = memmem(buf + off, len - off, "\r\n", 2);
        if (q == NULL) {
            return 0;
        }

        chunk = strtoul(buf + off, NULL, 16);
        off = q + 2 - buf;

        if (chunk == 0) {
            /* no trailers: the final CRLF */
            return len >= off + 2 ? off + 2 : 0;
        }

        if (len < off + chunk + 2) {
            return 0;
        }

        off += chunk + 2;
    }
}


/* closed loop: the number of answers is not known in advance */
static void
lat_grow(void)
{
    if (done < lat_cap) {
        return;
    }

    lat_cap = lat_cap ? lat_cap * 2 : 65536;
    lat = realloc(lat, lat_cap * sizeof(uint32_t));
    if (lat == NULL) {
        die("realloc");
    }
}


static int
cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


static uint32_t
pct(const uint32_t *v, size_t n, double p)
{
    size_t  i;

    if (n == 0) {
        return 0;
    }

    i = (size_t) (p / 100.0 * (double) n);
    return v[i >= n ? n - 1 : i];
}


static void
write_log(const char *file)
{
    FILE    *f;
    size_t   i;

    f = fopen(file, "w");
    if (f == NULL) {
        die(file);
    }

    for (i = 0; i < done; i++) {
        fprintf(f, "%lld %u %u\n", (long long) log_due[i], lat[i],
                (unsigned) log_status[i]);
    }

    if (fclose(f) != 0) {
        die(file);
    }
}


static void
report(double rate, size_t sent, int64_t start, int64_t last_done,
    size_t unfinished)
{
    qsort(lat, done, sizeof(uint32_t), cmp_u32);

    printf("LOADGEN rate=%.0f sent=%zu done=%lu achieved=%.0f non2xx=%lu "
           "errors=%lu unfinished=%zu p50_us=%u p90_us=%u p99_us=%u "
           "p999_us=%u max_us=%u\n",
           rate, sent, (unsigned long) done,
           last_done > start ? (double) done * 1e9 / (double) (last_done - start)
                             : 0.0,
           (unsigned long) non2xx, (unsigned long) errors, unfinished,
           pct(lat, done, 50), pct(lat, done, 90), pct(lat, done, 99),
           pct(lat, done, 99.9), done ? lat[done - 1] : 0);
}


/*
 * An epoll event on c: 1 when its request has ended (answered and
 * counted, or failed and the connection reopened), so c is free for the
 * next one; 0 while it is still under way.
 */
static int
conn_event(conn *c, uint32_t events)
{
    int      status, close_after;
    size_t   rlen;
    ssize_t  n;
    int64_t  now;

    if (!c->busy) {
        /* the server closed an idle keep-alive connection */
        char  b[256];

        if (read(c->fd, b, sizeof(b)) <= 0) {
            conn_reopen(c);
        }

        return 0;
    }

    if (events & EPOLLOUT) {
        conn_write(c);
        if (!c->busy) {
            return 1;       /* the write failed: the connection reopened */
        }
    }

    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return 0;
    }

    n = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }

    if (n <= 0) {
        errors++;
        conn_reopen(c);
        return 1;
    }

    c->in_len += n;

    rlen = response_length(c->in, c->in_len, &status, &close_after);
    if (rlen == 0) {
        if (c->in_len < IN_MAX) {
            return 0;
        }

        errors++;
        conn_reopen(c);
        return 1;
    }

    now = now_ns();
    lat_grow();

    if (log_due != NULL) {
        log_due[done] = c->due;
        log_status[done] = (uint16_t) status;
    }

    lat[done++] = (uint32_t) ((now - c->due) / 1000);
    last_done = now;

    if (status < 200 || status > 299) {
        non2xx++;
    }

    c->busy = 0;

    if (close_after) {
        conn_reopen(c);
    }

    return 1;
}


/*
 * -n: every connection sends its next request as soon as the previous one
 * is answered, until count were sent and seconds have passed.
 */
static int
closed_loop(const char *events, size_t first, size_t count, double seconds,
    int nconns)
{
    int                  k, nev;
    conn                *conns, *c;
    size_t               next, outstanding;
    int64_t              start, now, end;
    struct epoll_event   evs[256];

    if (port <= 0 || events == NULL || nconns <= 0 || seconds < 0) {
        fprintf(stderr, "loadgen: -p and -f are required with -n\n");
        return 2;
    }

    load_lines(events);

    conns = calloc(nconns, sizeof(conn));
    if (conns == NULL) {
        die("calloc");
    }

    epfd = epoll_create1(0);
    if (epfd < 0) {
        die("epoll_create1");
    }

    for (k = 0; k < nconns; k++) {
        conns[k].out = malloc(OUT_MAX);
        conns[k].in = malloc(IN_MAX);
        if (conns[k].out == NULL || conns[k].in == NULL) {
            die("malloc");
        }

        conn_open(&conns[k]);
    }

    next = 0;
    outstanding = 0;
    start = now_ns();
    end = start + (int64_t) (seconds * 1e9);

    for (k = 0; k < nconns; k++) {
        conn_send(&conns[k], &lines[(first + next) % nlines], now_ns());
        next++;
        outstanding += conns[k].busy;    /* 0: the write failed */
    }

    while (outstanding > 0) {
        nev = epoll_wait(epfd, evs, 256, 1000);
        if (nev < 0 && errno != EINTR) {
            die("epoll_wait");
        }

        for (k = 0; k < nev; k++) {
            c = evs[k].data.ptr;

            if (!conn_event(c, evs[k].events)) {
                continue;
            }

            outstanding--;

            now = now_ns();
            if (next < count || now < end) {
                conn_send(c, &lines[(first + next) % nlines], now);
                next++;
                outstanding += c->busy;
            }
        }
    }

    now = now_ns();
    report(0, next, start, now, 0);
    printf("FLOOD start_ns=%lld end_ns=%lld\n", (long long) start,
           (long long) now);

    return 0;
}


int
main(int argc, char **argv)
{
    int                  opt, nconns, k, nev;
    char                *events;
    conn                *conns, *c, **idle;
    size_t               first, total, next, head, tail, nidle, outstanding;
    size_t              *pending, i, count;
    double               rate, seconds;
    int64_t              start, now, due, wait;
    struct timespec      ts;
    struct epoll_event   evs[256];

    rate = 0;
    seconds = 0;
    nconns = 64;
    first = 0;
    count = 0;
    events = NULL;

    while ((opt = getopt(argc, argv, "p:u:f:r:d:c:o:H:n:l:b:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'f': events = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'o': first = strtoul(optarg, NULL, 10); break;
        case 'H': host = optarg; break;
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 'l': log_file = optarg; break;
        case 'b': bind_addr = optarg; break;
        default:
            fprintf(stderr, "usage: loadgen -p PORT -u PATH -f EVENTS"
                    " {-r RATE -d SECONDS [-l LOG] | -n COUNT [-d SECONDS]}"
                    " [-c CONNS] [-o FIRST] [-H HOST] [-b ADDR]\n");
            return 2;
        }
    }

    if (count > 0) {
        return closed_loop(events, first, count, seconds, nconns);
    }

    if (port <= 0 || events == NULL || rate <= 0 || seconds <= 0
        || nconns <= 0)
    {
        fprintf(stderr, "loadgen: -p, -f, -r and -d are required\n");
        return 2;
    }

    /* timers as precise as the kernel allows: 1 ns slack, not 50 us */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    load_lines(events);

    total = (size_t) (rate * seconds);
    lat_cap = total + 1;
    lat = calloc(lat_cap, sizeof(uint32_t));
    pending = calloc(total + 1, sizeof(size_t));
    conns = calloc(nconns, sizeof(conn));
    idle = calloc(nconns, sizeof(conn *));

    if (lat == NULL || pending == NULL || conns == NULL || idle == NULL) {
        die("calloc");
    }

    if (log_file != NULL) {
        log_due = calloc(lat_cap, sizeof(int64_t));
        log_status = calloc(lat_cap, sizeof(uint16_t));
        if (log_due == NULL || log_status == NULL) {
            die("calloc");
        }
    }

    epfd = epoll_create1(0);
    if (epfd < 0) {
        die("epoll_create1");
    }

    nidle = 0;

    for (k = 0; k < nconns; k++) {
        conns[k].out = malloc(OUT_MAX);
        conns[k].in = malloc(IN_MAX);
        if (conns[k].out == NULL || conns[k].in == NULL) {
            die("malloc");
        }

        conn_open(&conns[k]);
        idle[nidle++] = &conns[k];
    }

    next = 0;          /* next request to become due */
    head = tail = 0;   /* due, waiting for a connection: pending[head..tail) */
    outstanding = 0;
    start = now_ns() + 1000000;   /* 1 ms from now */

    for ( ;; ) {
        now = now_ns();

        while (next < total) {
            due = start + (int64_t) ((double) next * 1e9 / rate);
            if (due > now) {
                break;
            }

            pending[tail++] = next++;
        }

        while (head < tail && nidle > 0) {
            i = pending[head++];
            c = idle[--nidle];
            conn_send(c, &lines[(first + i) % nlines],
                      start + (int64_t) ((double) i * 1e9 / rate));
            outstanding++;
        }

        if (next == total && head == tail && outstanding == 0) {
            break;
        }

        if (next == total && now > start + (int64_t) (seconds * 1e9)
                                    + DRAIN_NS)
        {
            break;
        }

        if (next < total) {
            wait = start + (int64_t) ((double) next * 1e9 / rate) - now;
            if (wait < 0) {
                wait = 0;
            }

        } else {
            wait = 100000000;
        }

        ts.tv_sec = wait / 1000000000;
        ts.tv_nsec = wait % 1000000000;

        nev = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (nev < 0 && errno != EINTR) {
            die("epoll_pwait2");
        }

        for (k = 0; k < nev; k++) {
            c = evs[k].data.ptr;

            if (conn_event(c, evs[k].events)) {
                outstanding--;
                idle[nidle++] = c;
            }
        }
    }

    if (log_file != NULL) {
        write_log(log_file);
    }

    report(rate, next - (tail - head), start, last_done,
           outstanding + (tail - head) + (total - next));
    /* the window it sent in, as -n prints it (bench/flood --bad-rate) */
    printf("FLOOD start_ns=%lld end_ns=%lld\n", (long long) start,
           (long long) now_ns());

    return 0;
}
