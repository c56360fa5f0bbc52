# man: one page per command and file format. Pages are first-class docs;
# tests/integration/man_options.sh checks every flag against them.
dist_man_MANS += man/ehdelta.1 man/ehdelta-sas.1
dist_man_MANS += man/ehdelta.conf.5 man/ehdelta-delta.7
dist_man_MANS += man/ehdelta-send.1 man/ehdelta-tail.1 man/ehdelta-status.1
dist_man_MANS += man/ehdelta-run.1
dist_man_MANS += man/ehdelta-deploy.7
