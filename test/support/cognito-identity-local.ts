// A local stand-in for the Amazon Cognito Identity service's two public calls, GetId and
// GetCredentialsForIdentity, over real HTTP on a loopback port (no Cognito emulator exists on npm
// for this; the wire format follows the API reference:
// https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html,
// https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetCredentialsForIdentity.html).
// Tests delete identities and queue faults on it, and read the log of what reached it.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CognitoRequest {
  operation: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface CognitoFault {
  status: number;
  /** The fault name, sent as `__type` (and as `x-amzn-ErrorType` unless `header` is false). */
  type?: string;
  message?: string;
  /** A raw body instead of the JSON fault. */
  rawBody?: string;
}

export interface CognitoIdentityLocal {
  url: string;
  region: string;
  identityPoolId: string;
  /** Every request, in order. */
  readonly requests: CognitoRequest[];
  /** The credentials handed out, newest last. */
  readonly issued: { identityId: string; accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: number }[];
  /** Identities the pool knows. */
  readonly identities: Set<string>;
  /** Lifetime of the credentials handed out, in seconds. */
  credentialsLifetimeSeconds: number;
  /** CORS preflights answered. */
  readonly preflights: number;
  /** The next call of `operation` answers this fault instead (queued, one per call). */
  failNext(operation: 'GetId' | 'GetCredentialsForIdentity', fault: CognitoFault): void;
  count(operation: string): number;
  close(): Promise<void>;
}

export async function startCognitoIdentityLocal(region = 'us-east-1'): Promise<CognitoIdentityLocal> {
  const identityPoolId = `${region}:${randomUUID()}`;
  const requests: CognitoRequest[] = [];
  const issued: CognitoIdentityLocal['issued'] = [];
  const identities = new Set<string>();
  const faults = new Map<string, CognitoFault[]>();
  let lifetime = 3600;
  let preflights = 0;

  const server = createServer((req, res) => {
    // Cognito Identity answers browsers' CORS preflights (pages call it directly); so does this.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'x-amzn-requestid, x-amzn-errortype');
    if (req.method === 'OPTIONS') {
      preflights++;
      res.writeHead(204, {
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? ''),
        'access-control-max-age': '0',
      });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('AWSCognitoIdentityService.') ? target.slice('AWSCognitoIdentityService.'.length) : target;
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        // Logged as an empty body; answered as a serialization fault below.
      }
      requests.push({ operation, headers: req.headers, body });
      const answer = (status: number, json: unknown, type?: string) => {
        const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() };
        if (type) headers['x-amzn-errortype'] = `${type}:`;
        res.writeHead(status, headers).end(JSON.stringify(json));
      };
      const fault = faults.get(operation)?.shift();
      if (fault) {
        if (fault.rawBody !== undefined) {
          res.writeHead(fault.status, { 'content-type': 'text/html' }).end(fault.rawBody);
        } else {
          answer(fault.status, { __type: fault.type, message: fault.message ?? '' }, fault.type);
        }
        return;
      }
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
        answer(400, { __type: 'SerializationException', message: 'bad content type' }, 'SerializationException');
        return;
      }
      if (operation === 'GetId') {
        if (body.IdentityPoolId !== identityPoolId) {
          answer(400, { __type: 'ResourceNotFoundException', message: `IdentityPool '${String(body.IdentityPoolId)}' not found.` }, 'ResourceNotFoundException');
          return;
        }
        const identityId = `${region}:${randomUUID()}`;
        identities.add(identityId);
        answer(200, { IdentityId: identityId });
        return;
      }
      if (operation === 'GetCredentialsForIdentity') {
        const identityId = String(body.IdentityId);
        if (!identities.has(identityId)) {
          answer(400, { __type: 'ResourceNotFoundException', message: `Identity '${identityId}' not found.` }, 'ResourceNotFoundException');
          return;
        }
        const credentials = {
          identityId,
          accessKeyId: `ASIA${randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase()}`,
          secretAccessKey: randomUUID() + randomUUID(),
          sessionToken: `session-${randomUUID()}`,
          // JSON 1.1 timestamps are epoch seconds; Cognito sends fractional ones.
          expiration: Date.now() / 1000 + lifetime,
        };
        issued.push(credentials);
        answer(200, {
          IdentityId: identityId,
          Credentials: {
            AccessKeyId: credentials.accessKeyId,
            SecretKey: credentials.secretAccessKey,
            SessionToken: credentials.sessionToken,
            Expiration: credentials.expiration,
          },
        });
        return;
      }
      answer(400, { __type: 'UnknownOperationException', message: operation }, 'UnknownOperationException');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    region,
    identityPoolId,
    requests,
    issued,
    identities,
    get preflights() {
      return preflights;
    },
    get credentialsLifetimeSeconds() {
      return lifetime;
    },
    set credentialsLifetimeSeconds(seconds: number) {
      lifetime = seconds;
    },
    failNext(operation, fault) {
      const queue = faults.get(operation) ?? [];
      queue.push(fault);
      faults.set(operation, queue);
    },
    count: (operation) => requests.filter((r) => r.operation === operation).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
