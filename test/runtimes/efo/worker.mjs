// Entry for workerd: GET /?endpoint=<kinesis endpoint> runs the check and answers its report.
import { runEfoCheck } from './efo-check.mjs';

export default {
  async fetch(request) {
    const endpoint = new URL(request.url).searchParams.get('endpoint');
    return Response.json(await runEfoCheck({ endpoint }));
  },
};
