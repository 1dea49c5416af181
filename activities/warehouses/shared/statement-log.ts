/**
 * The one place every adapter's statements are numbered and logged, whatever the engine. Statements
 * hold names and SQL only: credentials never reach them (connections are opened from the profile).
 */
import type { Engine } from '../capabilities.js';

/** Receives every statement an adapter sends, already tagged with the engine and a sequence number. */
export type StatementLog = (statement: string) => void;

export class StatementCounter {
  private count = 0;

  constructor(
    private readonly engine: Engine | 'snowflake',
    private readonly log: StatementLog,
  ) {}

  /** Logs `sql` as the session's next statement; `note` (a query tag, a retry) goes in brackets. */
  record(sql: string, note?: string): void {
    this.count += 1;
    this.log(`[${this.engine} #${this.count}${note ? ` ${note}` : ''}] ${sql}`);
  }

  /** Logs something that happened to the session (a dropped connection), without numbering it. */
  event(message: string): void {
    this.log(`[${this.engine}] ${message}`);
  }
}
