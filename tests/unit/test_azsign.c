#include <stdlib.h>

#include "common/b64.h"
#include "store/azure.h"
#include "tests/unit/cu.h"

#define MADE_UP_KEY                                                                                \
  "bWFkZS11cC1rZXktZm9yLXNpZ25lci11bml0LXRlc3RzLW9ubHktLWRvLW5vdC11c2UtMDEyMzQ1Njc4OUFCQw=="
#define DEV_KEY                                                                                    \
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static void sign_with(const char *b64key, const char *sts, char *sig) {
  uint8_t key[128];
  size_t kl = 0;
  CU_ASSERT_EQUAL_FATAL(ed_b64_decode(b64key, strlen(b64key), key, &kl, NULL), ED_OK);
  CU_ASSERT_EQUAL(st_az_sign(key, kl, sts, strlen(sts), sig), ED_OK);
}

/* Reference azure-storage.md §2.8, examples A, B and C: string-to-sign and
 * signature byte for byte. */
static void test_shared_key_worked_examples(void) {
  static const struct {
    const char *verb, *account, *path, *query, *key;
    st_hdr_t hdrs[8];
    size_t nh;
    const char *sts, *sig;
  } cases[] = {
      {"PUT",
       "myaccount",
       "/delta-tables/sales/_delta_log/00000000000000000007.json",
       NULL,
       MADE_UP_KEY,
       {{"Content-Length", "42"},
        {"Content-Type", "application/json"},
        {"If-None-Match", "*"},
        {"x-ms-blob-type", "BlockBlob"},
        {"x-ms-client-request-id", "3f2d1c9e-0000-4000-8000-000000000001"},
        {"x-ms-date", "Tue, 24 Nov 2026 01:02:03 GMT"},
        {"x-ms-version", "2023-11-03"}},
       7,
       "PUT\n\n\n42\n\napplication/json\n\n\n\n*\n\n\nx-ms-blob-type:BlockBlob\nx-ms-client-"
       "request-id:3f2d1c9e-0000-4000-8000-000000000001\nx-ms-date:Tue, 24 Nov 2026 01:02:03 "
       "GMT\nx-ms-version:2023-11-03\n/myaccount/delta-tables/sales/_delta_log/"
       "00000000000000000007.json",
       "PO5iS7iF6Z2E5yhGkazFylS6A9Y0kc56u3sYNFDZaTI="},
      {"GET",
       "myaccount",
       "/delta-tables",
       "restype=container&comp=list&prefix=sales%2F_delta_log%2F&maxresults=2&include=metadata",
       MADE_UP_KEY,
       {{"x-ms-version", "2023-11-03"}, {"x-ms-date", "Tue, 24 Nov 2026 01:02:03 GMT"}},
       2,
       "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Tue, 24 Nov 2026 01:02:03 "
       "GMT\nx-ms-version:2023-11-03\n/myaccount/delta-tables\ncomp:list\ninclude:metadata\nmaxre"
       "sults:2\nprefix:sales/_delta_log/\nrestype:container",
       "p3FBiXmfUTu28t4q6D7KYlpGmEoiTg5Lo270kX7EBVI="},
      {"GET",
       "devstoreaccount1",
       "/devstoreaccount1/delta-tables/sales/part-00000.parquet",
       NULL,
       DEV_KEY,
       {{"Range", "bytes=0-1023"},
        {"x-ms-date", "Tue, 24 Nov 2026 01:02:03 GMT"},
        {"x-ms-version", "2023-11-03"}},
       3,
       "GET\n\n\n\n\n\n\n\n\n\n\nbytes=0-1023\nx-ms-date:Tue, 24 Nov 2026 01:02:03 "
       "GMT\nx-ms-version:2023-11-03\n/devstoreaccount1/devstoreaccount1/delta-tables/sales/"
       "part-00000.parquet",
       "SAbypWZCBZhU+SYRFJjnXfnIaSjURAAfQONSwoJuE/Q="},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ed_buf_t sts = ED_BUF_INIT;
    CU_ASSERT_EQUAL(st_az_string_to_sign(cases[i].verb, cases[i].hdrs, cases[i].nh,
                                         cases[i].account, cases[i].path, cases[i].query, &sts,
                                         NULL),
                    ED_OK);
    CU_ASSERT_STR(sts.data, cases[i].sts);
    char sig[64];
    sign_with(cases[i].key, sts.data, sig);
    CU_ASSERT_STR(sig, cases[i].sig);
    ed_buf_fini(&sts);
  }
}

static void test_zero_content_length_is_signed_empty(void) {
  st_hdr_t h[] = {{"Content-Length", "0"}, {"x-ms-date", "d"}};
  ed_buf_t sts = ED_BUF_INIT;
  st_az_string_to_sign("PUT", h, 2, "a", "/c", "restype=container", &sts, NULL);
  CU_ASSERT_STR(sts.data, "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:d\n/a/c\nrestype:container");
  ed_buf_fini(&sts);
}

static void test_url_forms_map_to_blob_endpoint(void) {
  static const struct {
    const char *url, *endpoint, *account, *container, *prefix;
  } cases[] = {
      {"abfss://tables@acct.dfs.core.windows.net/raw/events", "https://acct.blob.core.windows.net",
       "acct", "tables", "raw/events"},
      {"abfs://tables@acct.blob.core.windows.net/raw/", "https://acct.blob.core.windows.net",
       "acct", "tables", "raw"},
      {"az://tables/raw", "https://deflt.blob.core.windows.net", "deflt", "tables", "raw"},
      {"az://tables@acct.blob.core.windows.net/x/y", "https://acct.blob.core.windows.net", "acct",
       "tables", "x/y"},
      {"https://acct.blob.core.windows.net/tables/raw", "https://acct.blob.core.windows.net",
       "acct", "tables", "raw"},
      {"https://acct.dfs.core.chinacloudapi.cn/fs/t", "https://acct.blob.core.chinacloudapi.cn",
       "acct", "fs", "t"},
      {"http://127.0.0.1:10000/devstoreaccount1/delta/tbl",
       "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "delta", "tbl"},
      {"http://127.0.0.1:10000/devstoreaccount1/delta", "http://127.0.0.1:10000/devstoreaccount1",
       "devstoreaccount1", "delta", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    st_az_url_t u;
    ed_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(st_az_parse_url(cases[i].url, "deflt", &u, &err), ED_OK);
    CU_ASSERT_STR(u.endpoint, cases[i].endpoint);
    CU_ASSERT_STR(u.account, cases[i].account);
    CU_ASSERT_STR(u.container, cases[i].container);
    CU_ASSERT_STR(u.prefix, cases[i].prefix);
    st_az_url_fini(&u);
  }
}

static void test_bad_urls_are_refused_with_a_reason(void) {
  static const char *bad[] = {"abfss://tables@acct.example.com/x", "az://tables/x",
                              "http://127.0.0.1:10000/devstoreaccount1",
                              "https://acct.blob.core.windows.net/Upper/x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    st_az_url_t u;
    ed_err_t err = {0};
    CU_ASSERT_NOT_EQUAL(st_az_parse_url(bad[i], NULL, &u, &err), ED_OK);
    CU_ASSERT(err.msg[0] != 0);
  }
}

static void test_http_date_round_trips(void) {
  char d[30];
  int64_t us = INT64_C(1795482123) * 1000000; /* 2026-11-24T01:02:03Z */
  st_az_http_date(us, d);
  CU_ASSERT_STR(d, "Tue, 24 Nov 2026 01:02:03 GMT");
  int64_t ms = 0;
  CU_ASSERT_EQUAL(st_az_parse_http_date(d, &ms), ED_OK);
  CU_ASSERT_EQUAL(ms, us / 1000);
  CU_ASSERT_EQUAL(st_az_retry_after_us("3", 0), 3000000);
  CU_ASSERT_EQUAL(st_az_retry_after_us(d, us - 2000000), 2000000);
  CU_ASSERT_EQUAL(st_az_retry_after_us("soon", 0), -1);
}

static void test_list_page_parsed_with_marker_and_entities(void) {
  const char *xml =
      "<?xml version=\"1.0\"?><EnumerationResults ContainerName=\"d\"><Prefix>t/</Prefix><Blobs>"
      "<Blob><Name>t/_delta_log/00000000000000000000.json</Name><Properties><Last-Modified>Tue, "
      "24 Nov 2026 01:02:03 GMT</Last-Modified><Content-Length>18</Content-Length></Properties>"
      "</Blob><Blob><Name>t/a&amp;b</Name><Properties><Content-Length>0</Content-Length>"
      "<ResourceType>file</ResourceType></Properties></Blob>"
      "<Blob><Name>t/dir</Name><Properties><ResourceType>directory</ResourceType></Properties>"
      "</Blob></Blobs><NextMarker>t/a&amp;b</NextMarker></EnumerationResults>";
  st_list_t l = {0};
  ed_buf_t m = ED_BUF_INIT;
  CU_ASSERT_EQUAL(st_az_parse_list(xml, strlen(xml), 2, &l, &m, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(l.n, 2);
  CU_ASSERT_STR(l.items[0].key, "_delta_log/00000000000000000000.json");
  CU_ASSERT_EQUAL(l.items[0].size, 18);
  CU_ASSERT_EQUAL(l.items[0].mtime_ms, INT64_C(1795482123000));
  CU_ASSERT_STR(l.items[1].key, "a&b");
  CU_ASSERT_STR(m.data, "t/a&b");
  st_list_fini(&l);
  ed_buf_fini(&m);
}

static void test_list_with_metadata_keeps_etags_and_pairs(void) {
  const char *xml =
      "<?xml version=\"1.0\"?><EnumerationResults><Blobs>"
      "<Blob><Name>ns/hub/g/ownership/1</Name><Properties><Last-Modified>Tue, "
      "24 Nov 2026 01:02:03 GMT</Last-Modified><Etag>0x8DC9A0B1C2D3E4F</Etag>"
      "<Content-Length>0</Content-Length></Properties>"
      "<Metadata><ownerid>a&amp;b</ownerid><empty/><x>1</x></Metadata></Blob>"
      "<Blob><Name>ns/hub/g/ownership/0</Name><Properties><Etag>\"0x1\"</Etag></Properties>"
      "<Metadata /></Blob></Blobs><NextMarker/></EnumerationResults>";
  st_blobs_t b = {0};
  ed_buf_t m = ED_BUF_INIT;
  CU_ASSERT_EQUAL(st_az_parse_list_meta(xml, strlen(xml), 3, &b, &m, NULL), ED_OK);
  CU_ASSERT_EQUAL_FATAL(b.n, 2);
  CU_ASSERT_STR(b.items[0].key, "hub/g/ownership/1");
  CU_ASSERT_STR(b.items[0].etag, "0x8DC9A0B1C2D3E4F");
  CU_ASSERT_EQUAL(b.items[0].mtime_ms, INT64_C(1795482123000));
  CU_ASSERT_EQUAL(b.items[0].nmeta, 3);
  CU_ASSERT_STR(st_blob_meta(&b.items[0], "ownerid"), "a&b");
  CU_ASSERT_STR(st_blob_meta(&b.items[0], "empty"), "");
  CU_ASSERT_STR(st_blob_meta(&b.items[0], "x"), "1");
  CU_ASSERT_STR(b.items[1].etag, "\"0x1\"");
  CU_ASSERT_EQUAL(b.items[1].nmeta, 0);
  CU_ASSERT_PTR_NULL(st_blob_meta(&b.items[1], "ownerid"));
  CU_ASSERT_EQUAL(m.len, 0);
  st_blobs_fini(&b);
  ed_buf_fini(&m);
}

static const cu_case_t cases[] = {CU_CASE(test_shared_key_worked_examples),
                                  CU_CASE(test_zero_content_length_is_signed_empty),
                                  CU_CASE(test_url_forms_map_to_blob_endpoint),
                                  CU_CASE(test_bad_urls_are_refused_with_a_reason),
                                  CU_CASE(test_http_date_round_trips),
                                  CU_CASE(test_list_page_parsed_with_marker_and_entities),
                                  CU_CASE(test_list_with_metadata_keeps_etags_and_pairs),
                                  CU_END};
ED_SUITE(azsign, cases)
