/* page: the status page the metrics server sends for GET / (one HTML file
 * with its CSS and JavaScript inline, src/agent/page/status.html), compiled
 * into the binary by scripts/embed.sh so that a host without a network or
 * files beside the binary still shows it. Read-only data; no code. */
#ifndef ED_AGENT_PAGE_H
#define ED_AGENT_PAGE_H

#include <stddef.h>

extern const unsigned char ag_page_html[];
extern const size_t ag_page_html_len;

#endif
