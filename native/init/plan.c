/* Decodes the plan (format in ../plan.h) that Node writes on the plan pipe.
 * Runs in stage 0, before any namespace is entered. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../plan.h"
#include "sync.h"

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes percent-escapes in place; "%" alone is the empty string. */
static void
decode_field (char *s)
{
  char *out = s;

  if (strcmp (s, "%") == 0)
    {
      *s = '\0';
      return;
    }
  while (*s)
    {
      if (*s == '%' && hexval (s[1]) >= 0 && hexval (s[2]) >= 0)
        {
          *out++ = (char) (hexval (s[1]) * 16 + hexval (s[2]));
          s += 3;
        }
      else
        *out++ = *s++;
    }
  *out = '\0';
}

static void
parse_line (char *line, struct berth_record *rec)
{
  int cap = 8;
  char *save = NULL, *tok;

  rec->fields = calloc ((size_t) cap, sizeof (char *));
  rec->nfields = 0;
  rec->tag = strtok_r (line, " ", &save);
  while ((tok = strtok_r (NULL, " ", &save)) != NULL)
    {
      if (rec->nfields == cap)
        {
          cap *= 2;
          rec->fields = realloc (rec->fields, (size_t) cap * sizeof (char *));
        }
      decode_field (tok);
      rec->fields[rec->nfields++] = tok;
    }
}

void
berth_plan_read (int fd, struct berth_plan *plan)
{
  size_t cap = 65536, len = 0;
  char *buf = malloc (cap), *line, *save = NULL;
  int rcap = 64;

  for (;;)
    {
      ssize_t r;
      if (len + 1 >= cap)
        {
          cap *= 2;
          buf = realloc (buf, cap);
        }
      r = read (fd, buf + len, cap - len - 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        berth_fail (errno, "read plan", NULL);
      if (r == 0)
        break;
      len += (size_t) r;
    }
  buf[len] = '\0';

  plan->records = calloc ((size_t) rcap, sizeof (struct berth_record));
  plan->nrecords = 0;
  for (line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      if (plan->nrecords == rcap)
        {
          rcap *= 2;
          plan->records = realloc (plan->records, (size_t) rcap * sizeof (struct berth_record));
        }
      parse_line (line, &plan->records[plan->nrecords]);
      if (plan->records[plan->nrecords].tag)
        plan->nrecords++;
    }
}

struct berth_record *
berth_plan_find (struct berth_plan *plan, const char *tag)
{
  for (int i = 0; i < plan->nrecords; i++)
    if (strcmp (plan->records[i].tag, tag) == 0)
      return &plan->records[i];
  return NULL;
}

const char *
berth_plan_get (struct berth_plan *plan, const char *tag, int i, const char *default_value)
{
  struct berth_record *r = berth_plan_find (plan, tag);

  if (r == NULL || i >= r->nfields)
    return default_value;
  return r->fields[i];
}
