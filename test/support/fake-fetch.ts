// A scripted stand-in for `fetch` for unit tests: it records every request (url, method, headers,
// body) and answers from a queue of replies. Error shapes follow the Kinesis JSON protocol:
// `{"__type": ..., "message": ...}` plus `x-amzn-ErrorType`
// (https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html).

/**
 * The text of a request body as the client sends it: UTF-8 bytes (encoded once for both the
 * signature and fetch), or a string from callers that pass one.
 */
export function bodyText(body: BodyInit | null | undefined): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array || body instanceof ArrayBuffer) return new TextDecoder().decode(body);
  throw new Error(`bodyText: unexpected body ${Object.prototype.toString.call(body)}`);
}

/** One request the fake saw. */
export interface RecordedRequest {
  /** 0-based arrival order. */
  index: number;
  url: string;
  method: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: string;
  /** Parsed JSON body, `undefined` when empty or not JSON. */
  json: any;
  /** `PutRecords` from `X-Amz-Target: Kinesis_20131202.PutRecords`. */
  operation: string | undefined;
  signal: AbortSignal | undefined;
  /** `Date.now()` when the request was made (the faked clock under `vi.useFakeTimers`). */
  at: number;
}

/** What a reply can be: a response, an error to reject with, or a function of the request. */
export type Reply =
  | Response
  | Error
  | ((request: RecordedRequest) => Response | Error | Promise<Response | Error>);

/** A `fetch` plus its log and script. */
export interface FakeFetch {
  (input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Every request so far, in order. */
  readonly requests: RecordedRequest[];
  /** Response bodies the client has finished reading (so it has moved on to its next step). */
  readonly bodiesRead: number;
  /** Adds replies at the end of the script. */
  push(...replies: Reply[]): void;
}

export interface FakeFetchOptions {
  /**
   * Used when the script is empty. Without one, an unscripted request is answered 418
   * `FakeFetchScriptExhausted`, a fault the client does not retry, so the test fails loudly.
   * @default undefined
   */
  fallback?: Reply;
}

/**
 * Creates a fake `fetch` that answers `replies` in order.
 * @example
 * const fake = createFakeFetch([awsError(500, 'InternalFailure'), json({ ShardId: 's', SequenceNumber: '1' })]);
 * const client = createKinesisClient({ region: 'us-east-1', credentials, fetch: fake });
 * await putRecord(client, input);
 * expect(fake.requests).toHaveLength(2);
 */
export function createFakeFetch(replies: readonly Reply[] = [], options: FakeFetchOptions = {}): FakeFetch {
  const queue: Reply[] = [...replies];
  const requests: RecordedRequest[] = [];
  let bodiesRead = 0;

  const fake = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const request = input instanceof Request ? input : undefined;
    const headers: Record<string, string> = {};
    new Headers(init.headers ?? request?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = init.body !== undefined && init.body !== null ? bodyText(init.body) : request ? await request.text() : '';
    let json: any;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const target = headers['x-amz-target'];
    const recorded: RecordedRequest = {
      index: requests.length,
      url: request ? request.url : String(input),
      method: init.method ?? request?.method ?? 'GET',
      headers,
      body,
      json,
      operation: target === undefined ? undefined : target.slice(target.lastIndexOf('.') + 1),
      signal: init.signal ?? undefined,
      at: Date.now(),
    };
    requests.push(recorded);

    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const reply = queue.length > 0 ? queue.shift()! : options.fallback ?? exhausted(recorded.index);
    const outcome = await raceAbort(typeof reply === 'function' ? Promise.resolve(reply(recorded)) : Promise.resolve(reply), signal);
    if (outcome instanceof Error) throw outcome;
    return countBodyRead(outcome.clone());
  };

  function countBodyRead(response: Response): Response {
    const text = response.text.bind(response);
    response.text = async () => {
      try {
        return await text();
      } finally {
        bodiesRead++;
      }
    };
    return response;
  }

  // defineProperty, not Object.assign: assign would copy the getter's current value once.
  Object.defineProperty(fake, 'bodiesRead', { get: () => bodiesRead });
  return Object.assign(fake, {
    requests,
    push(...more: Reply[]) {
      queue.push(...more);
    },
  }) as unknown as FakeFetch;
}

/** A reply like a real fetch gives when the request's signal fires: rejects with the reason. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function exhausted(index: number): Response {
  return awsError(418, 'FakeFetchScriptExhausted', `fake fetch: no scripted reply for request #${index}`);
}

/** A 200 answer with a JSON body, as Kinesis sends it. */
export function json(body: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return new Response(JSON.stringify(body), {
    status: init.status ?? 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': 'req-ok', ...init.headers },
  });
}

/** A Kinesis fault: `__type` in the body and `x-amzn-ErrorType`, as the service answers. */
export function awsError(
  status: number,
  type: string,
  message = `${type} from the fake`,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ __type: type, message }), {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-ErrorType': type,
      'x-amzn-RequestId': `req-${type}`,
      ...headers,
    },
  });
}

/** A response with any status, body and headers (no defaults added). */
export function raw(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body === '' ? null : body, { status, headers });
}

/** What browsers' fetch throws when the network fails (Chrome's wording; Safari says "Load failed"). */
export function networkError(message = 'Failed to fetch'): TypeError {
  return new TypeError(message);
}

/** A reply that never comes: the request hangs until its signal aborts it. */
export function hang(): Reply {
  return () => new Promise<Response>(() => {});
}

/** A `PutRecord` success body. */
export function putRecordOk(sequenceNumber = '49545115243490985018280067714973144582180062593244200961'): Response {
  return json({ ShardId: 'shardId-000000000000', SequenceNumber: sequenceNumber });
}

/**
 * Waits (with real time: `setImmediate` is not faked by our tests) until `condition` holds, then
 * lets pending microtasks run. Throws after `timeoutMs` of real time.
 */
export async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`until: condition still false after ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await new Promise<void>((resolve) => setImmediate(resolve));
}
