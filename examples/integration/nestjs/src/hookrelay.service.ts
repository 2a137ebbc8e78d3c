import { Inject, Injectable, Logger } from "@nestjs/common";
import { randomUUID } from "node:crypto";

/** What to send: a catalogue type, its data, and (strongly advised) an idempotency key. */
export interface HookrelayEvent {
  type: string;
  data: Record<string, unknown>;
  /** Your own id for this fact (a message id, say): 1 to 255 bytes. */
  idempotency_key?: string;
}

/** hookrelay's answer for each accepted event. */
export interface Accepted {
  id: string;
  type: string;
  deliveries: number;
  /** True when the idempotency key matched an earlier event, which is answered instead. */
  duplicate: boolean;
}

/** An RFC 9457 problem answer: every hookrelay error has this shape. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
}

/** A refusal that retrying will not fix (400, 401, 413, 422 ...): fix the request. */
export class HookrelayError extends Error {
  constructor(readonly problem: Problem) {
    super(`hookrelay answered ${problem.status}: ${problem.detail}`);
  }
}

export interface HookrelayOptions {
  baseUrl: string; // e.g. http://hookrelay.internal:8080
  apiKey: string; // the tenant's key (hr_...), or the admin key with tenant_id in each event
  maxAttempts?: number; // default 5
  timeoutMs?: number; // default 10 000
}

export const HOOKRELAY_OPTIONS = Symbol("HOOKRELAY_OPTIONS");

@Injectable()
export class HookrelayService {
  private readonly logger = new Logger(HookrelayService.name);

  constructor(@Inject(HOOKRELAY_OPTIONS) private readonly options: HookrelayOptions) {}

  /** Sends one event. Safe to call again after any failure: the idempotency key dedupes. */
  async send(event: HookrelayEvent): Promise<Accepted> {
    return this.post<Accepted>("/api/v1/events", withKey(event));
  }

  /** Sends 1 to 500 events in one request; the answers come back in the same order. */
  async sendBatch(events: HookrelayEvent[]): Promise<Accepted[]> {
    const answer = await this.post<{ data: Accepted[] }>("/api/v1/events/batch", {
      events: events.map(withKey),
    });
    return answer.data;
  }

  /**
   * POSTs `body`, retrying what a retry can fix (network errors, timeouts, 429, 5xx) with
   * the same body, hence the same idempotency keys: a retry never creates a second event.
   */
  private async post<T>(path: string, body: unknown): Promise<T> {
    const maxAttempts = this.options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs = Math.min(250 * 2 ** (attempt - 1), 10_000);
      let reason: string;
      try {
        const response = await fetch(new URL(path, this.options.baseUrl), {
          method: "POST",
          headers: {
            authorization: `Bearer ${this.options.apiKey}`,
            "content-type": "application/json",
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        if (response.ok) return (await response.json()) as T; // 202 accepted, 200 duplicate
        const problem = (await response.json().catch(() => ({
          type: "about:blank",
          title: response.statusText,
          status: response.status,
          detail: `HTTP ${response.status}`,
        }))) as Problem;
        const retryable = response.status === 429 || response.status >= 500;
        if (!retryable || attempt >= maxAttempts) throw new HookrelayError(problem);
        reason = `${response.status}`;
        // 429 and 503 say when to come back, in seconds.
        const retryAfter = Number(response.headers.get("retry-after"));
        if (retryAfter > 0) {
          retryAfterMs = retryAfter * 1000;
          reason += ` (Retry-After: ${retryAfter})`;
        }
      } catch (error) {
        if (error instanceof HookrelayError || attempt >= maxAttempts) throw error;
        // A network error or a timeout: the event may or may not be stored; retry.
        reason = `${error}`;
      }
      this.logger.warn(
        `retrying POST ${path} after ${reason} in ${retryAfterMs} ms, attempt ${attempt + 1} of ${maxAttempts}`,
      );
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
    }
  }
}

/** Gives the event an idempotency key before the first attempt, so every retry carries it. */
function withKey(event: HookrelayEvent): HookrelayEvent {
  return { ...event, idempotency_key: event.idempotency_key ?? randomUUID() };
}
