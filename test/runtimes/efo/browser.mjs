// Entry for Chromium: a page on another loopback origin than kinesis-local (CORS, secure context).
import { runEfoCheck } from './efo-check.mjs';

globalThis.__efo = runEfoCheck({ endpoint: new URL(location.href).searchParams.get('endpoint') });
