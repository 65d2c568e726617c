/*
 * berth-proxy: the published ports of one bridge-networked container (src/network/bridge.ts).
 * It binds every host port first, so a port another program (or container) holds is an
 * error before the container starts, and serves what DNAT cannot: connections the host
 * makes to itself (127.0.0.1 never passes prerouting, and DNAT from loopback to a bridge
 * needs route_localnet). One process per container, single-threaded, epoll, read/write.
 *
 *   berth-proxy WATCH PROTO,HOSTIP,HOSTPORT,CTRIP,CTRPORT...
 *
 * Prints "ready PORT..." (the bound host ports, in order; a HOSTPORT of 0 is chosen by the
 * kernel) or "error MESSAGE" on stdout, then detaches from it. Exits on SIGTERM, or when
 * the file WATCH (the container's directory) is gone, so a crashed berth leaves no proxy
 * behind for long.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* bridge.ts refuses more (MAX_PROXY_PORTS): the argument list and the fds must fit. */
#define MAX_PORTS 4096
#define BUF_SIZE 65536
#define UDP_IDLE_SEC 60
#define MAX_UDP_FLOWS 1024

enum kind { K_TCP_LISTEN, K_UDP_LISTEN, K_TCP_SIDE, K_UDP_FLOW };

struct port {
  enum kind kind;
  int fd;
  int paused;              /* out of fds: not accepting until the next periodic check */
  struct sockaddr_storage ctr;
  socklen_t ctr_len;
};

struct conn;
struct side {
  enum kind kind;          /* K_TCP_SIDE: first, so an epoll pointer tells what it is */
  struct conn *c;
  int fd;
  char buf[BUF_SIZE];      /* bytes read from this side, to be written to the other */
  size_t len, off;
  int eof;                 /* this side sent FIN (read returned 0) */
  int shut;                /* we have shut down writing to this side */
  int hup;                 /* EPOLLHUP seen: out of the epoll set, drained by the peer's events */
};
struct conn {
  struct side s[2];        /* 0: client, 1: container */
  int connecting;
  int dead;                /* closed; freed after the current epoll batch */
  struct conn *next_dead;
};

struct flow {
  enum kind kind;
  struct port *p;
  int fd;
  struct sockaddr_storage client;
  socklen_t client_len;
  time_t last;
};

static int ep;
static volatile sig_atomic_t stop;
static struct flow *flows[MAX_UDP_FLOWS];
static struct conn *graveyard;

static void on_term(int sig) { stop = 1; }

static int parse_addr(const char *ip, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
  char *end;
  long p = strtol(port, &end, 10);
  if (*end || p < 0 || p > 65535) return -1;
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(p);
    *len = sizeof(*in4);
    return 0;
  }
  if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(p);
    *len = sizeof(*in6);
    return 0;
  }
  return -1;
}

static void watch(void *ptr, int fd, unsigned events, int op)
{
  struct epoll_event ev = { .events = events, .data.ptr = ptr };
  epoll_ctl(ep, op, fd, &ev);
}

/* Freed later: events for the other side may still be pending in this epoll batch.
 * RESET (a side failed or was reset): both sides are reset, not closed, so that a client
 * never takes a container's reset (a crash mid-reply) for a complete answer. */
static void conn_close_how(struct conn *c, int reset)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  for (int i = 0; i < 2 && reset; i++) {
    if (c->s[i].fd >= 0) setsockopt(c->s[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  for (int i = 0; i < 2; i++) {
    if (c->s[i].fd >= 0) close(c->s[i].fd);   /* close drops it from the epoll set */
  }
  c->dead = 1;
  c->next_dead = graveyard;
  graveyard = c;
}

static void conn_close(struct conn *c) { conn_close_how(c, 0); }
static void conn_abort(struct conn *c) { conn_close_how(c, 1); }

/* What each side waits for: input while the buffer toward its peer is empty, output
 * while the buffer toward it holds bytes (or while the connect to the container runs). */
static void conn_update(struct conn *c)
{
  for (int i = 0; i < 2; i++) {
    struct side *me = &c->s[i], *peer = &c->s[1 - i];
    unsigned ev = 0;
    if (!me->eof && me->len == 0 && !c->connecting) ev |= EPOLLIN;
    /* A hung-up peer is out of the set: what it still holds is read when this side can take it. */
    if (peer->len > peer->off || (i == 1 && c->connecting) || (peer->hup && !peer->eof)) ev |= EPOLLOUT;
    if (!me->hup) watch(me, me->fd, ev, EPOLL_CTL_MOD);
  }
}

/* Moves bytes between the sides; -1 when the connection is over, -2 when a side failed. */
static int conn_pump(struct conn *c)
{
  for (int i = 0; i < 2; i++) {
    struct side *from = &c->s[i], *to = &c->s[1 - i];
    if (from->len == 0 && !from->eof && !c->connecting) {
      ssize_t n = read(from->fd, from->buf, BUF_SIZE);
      if (n > 0) {
        from->len = n;
        from->off = 0;
      } else if (n == 0) {
        from->eof = 1;
      } else if (errno != EAGAIN && errno != EINTR) {
        return -2;
      }
    }
    while (from->off < from->len) {
      ssize_t n = write(to->fd, from->buf + from->off, from->len - from->off);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return -2;
      }
      from->off += n;
    }
    if (from->off == from->len) from->len = from->off = 0;
    if (from->eof && from->len == 0 && !to->shut) {
      shutdown(to->fd, SHUT_WR);
      to->shut = 1;
    }
  }
  if (c->s[0].shut && c->s[1].shut) return -1;
  return 0;
}

static void tcp_accept(struct port *p)
{
  int cfd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) {
    /* Out of fds the pending connection stays, and a level-triggered listener would wake
     * us at once, forever: stop listening for a moment instead. */
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      p->paused = 1;
      watch(p, p->fd, 0, EPOLL_CTL_MOD);
    }
    return;
  }
  int sfd = socket(p->ctr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct conn *c = calloc(1, sizeof(*c));
  if (sfd < 0 || !c) {
    close(cfd);
    if (sfd >= 0) close(sfd);
    free(c);
    return;
  }
  c->s[0].kind = c->s[1].kind = K_TCP_SIDE;
  c->s[0].c = c->s[1].c = c;
  c->s[0].fd = cfd;
  c->s[1].fd = sfd;
  c->connecting = 1;
  if (connect(sfd, (struct sockaddr *)&p->ctr, p->ctr_len) < 0 && errno != EINPROGRESS) {
    conn_abort(c);
    return;
  }
  watch(&c->s[0], cfd, 0, EPOLL_CTL_ADD);
  watch(&c->s[1], sfd, EPOLLOUT, EPOLL_CTL_ADD);
}

static void tcp_event(struct side *s, unsigned events)
{
  struct conn *c = s->c;
  if (c->dead) return;
  /* EPOLLERR and EPOLLHUP come whatever the mask says, and stay: answering them with
   * nothing to do spun at full CPU (a client that reset while its bytes waited for a
   * container that does not read). An error (a reset) ends the connection; a hang-up
   * leaves the set, and what the side still holds is read as the other side takes it. */
  if (events & EPOLLERR) {
    conn_abort(c);
    return;
  }
  if ((events & EPOLLHUP) && !s->hup) {
    s->hup = 1;
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
  }
  if (c->connecting) {
    if (s != &c->s[1]) return;
    int err = 0;
    socklen_t l = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      conn_abort(c);   /* nothing listens in the container: the client sees a reset */
      return;
    }
    c->connecting = 0;
  }
  int r = conn_pump(c);
  if (r < 0) {
    if (r == -2) conn_abort(c);
    else conn_close(c);
    return;
  }
  conn_update(c);
}

static void flow_close(int i)
{
  close(flows[i]->fd);
  free(flows[i]);
  flows[i] = NULL;
}

static void udp_from_client(struct port *p)
{
  char buf[BUF_SIZE];
  struct sockaddr_storage from;
  socklen_t fl = sizeof(from);
  ssize_t n = recvfrom(p->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
  if (n < 0) return;
  struct flow *f = NULL;
  int free_slot = -1;
  for (int i = 0; i < MAX_UDP_FLOWS; i++) {
    if (!flows[i]) {
      if (free_slot < 0) free_slot = i;
    } else if (flows[i]->p == p && flows[i]->client_len == fl && !memcmp(&flows[i]->client, &from, fl)) {
      f = flows[i];
      break;
    }
  }
  if (!f) {
    if (free_slot < 0) return;   /* table full: drop, as a busy NAT would */
    int fd = socket(p->ctr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&p->ctr, p->ctr_len) < 0 || !(f = calloc(1, sizeof(*f)))) {
      close(fd);
      return;
    }
    *f = (struct flow){ .kind = K_UDP_FLOW, .p = p, .fd = fd, .client = from, .client_len = fl };
    flows[free_slot] = f;
    watch(f, fd, EPOLLIN, EPOLL_CTL_ADD);
  }
  f->last = time(NULL);
  send(f->fd, buf, n, 0);
}

static void udp_from_container(struct flow *f)
{
  char buf[BUF_SIZE];
  ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
  if (n < 0) return;
  f->last = time(NULL);
  sendto(f->p->fd, buf, n, 0, (struct sockaddr *)&f->client, f->client_len);
}

static int open_port(struct port *p, const char *spec, char *err, size_t errlen, int *bound)
{
  char copy[256], *field[5], *save = NULL;
  snprintf(copy, sizeof(copy), "%s", spec);
  int n = 0;
  for (char *t = strtok_r(copy, ",", &save); t && n < 5; t = strtok_r(NULL, ",", &save)) field[n++] = t;
  struct sockaddr_storage host;
  socklen_t hl;
  int udp = n == 5 && !strcmp(field[0], "udp");
  if (n != 5 || (!udp && strcmp(field[0], "tcp")) || parse_addr(field[1], field[2], &host, &hl) < 0
      || parse_addr(field[3], field[4], &p->ctr, &p->ctr_len) < 0) {
    snprintf(err, errlen, "bad mapping \"%s\"", spec);
    return -1;
  }
  p->kind = udp ? K_UDP_LISTEN : K_TCP_LISTEN;
  p->fd = socket(host.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (p->fd >= 0 && !udp) setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (p->fd >= 0 && host.ss_family == AF_INET6) setsockopt(p->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&host, hl) < 0 || (!udp && listen(p->fd, 128) < 0)) {
    snprintf(err, errlen, "bind %s %s:%s: %s", field[0], field[1], field[2], strerror(errno));
    return -1;
  }
  struct sockaddr_storage got;
  socklen_t gl = sizeof(got);
  getsockname(p->fd, (struct sockaddr *)&got, &gl);
  *bound = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port : ((struct sockaddr_in6 *)&got)->sin6_port);
  watch(p, p->fd, EPOLLIN, EPOLL_CTL_ADD);
  return 0;
}

int main(int argc, char **argv)
{
  static struct port ports[MAX_PORTS];
  static char line[16 + MAX_PORTS * 6];
  char err[512];
  size_t at;

  if (argc < 3 || argc - 2 > MAX_PORTS) {
    fprintf(stderr, "usage: berth-proxy WATCH PROTO,HOSTIP,HOSTPORT,CTRIP,CTRPORT...\n");
    return 2;
  }
  /* Two fds per connection: take what the hard limit allows. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  ep = epoll_create1(EPOLL_CLOEXEC);
  at = snprintf(line, sizeof(line), "ready");
  for (int i = 2; i < argc; i++) {
    int bound;
    if (open_port(&ports[i - 2], argv[i], err, sizeof(err), &bound) < 0) {
      printf("error %s\n", err);
      return 1;
    }
    at += snprintf(line + at, sizeof(line) - at, " %d", bound);
  }
  printf("%s\n", line);
  fflush(stdout);

  /* Detach from the caller's pipe and terminal: berth reads one line and goes on. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(null, 0);
  dup2(null, 1);
  dup2(null, 2);

  time_t last_check = time(NULL);
  while (!stop) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 1000);
    for (int i = 0; i < n; i++) {
      enum kind *k = evs[i].data.ptr;
      if (*k == K_TCP_LISTEN) tcp_accept((struct port *)k);
      else if (*k == K_UDP_LISTEN) udp_from_client((struct port *)k);
      else if (*k == K_UDP_FLOW) udp_from_container((struct flow *)k);
      else tcp_event((struct side *)k, evs[i].events);
    }
    while (graveyard) {
      struct conn *c = graveyard;
      graveyard = c->next_dead;
      free(c);
    }
    time_t now = time(NULL);
    if (now - last_check >= 2) {
      struct stat st;
      if (stat(argv[1], &st) < 0 && errno == ENOENT) break;
      for (int j = 0; j < argc - 2; j++) {
        if (ports[j].paused) {
          ports[j].paused = 0;
          watch(&ports[j], ports[j].fd, EPOLLIN, EPOLL_CTL_MOD);
        }
      }
      for (int j = 0; j < MAX_UDP_FLOWS; j++) {
        if (flows[j] && now - flows[j]->last > UDP_IDLE_SEC) flow_close(j);
      }
      last_check = now;
    }
  }
  return 0;
}
