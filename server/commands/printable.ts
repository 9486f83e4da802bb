import { AuditEvent } from '../registry/entities';

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]|<(?=\/?[a-zA-Z]+>)/g;
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * Text from the database, safe to print on one line: control characters (a newline in an ID would forge a line),
 * bidirectional overrides (they reorder what a terminal shows) and the logger's colour tags (`<red>`) are escaped.
 */
export function printable(text: string | undefined): string {
    if (text === undefined) return '';
    return text.replace(UNPRINTABLE, character => NAMED_ESCAPES[character] ?? '\\u' + character.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** One audit row as the `audit` command prints it. */
export function formatAuditEvent(event: AuditEvent): string {
    const what = [
        event.target && `→ ${printable(event.target)}`,
        event.controller && `${printable(event.controller)}.${printable(event.action)}`,
        event.reason && printable(event.reason),
    ].filter(Boolean).join('  ');
    const broker = event.brokerId ? `, broker ${printable(event.brokerId)}` : '';
    return `${event.at.toISOString()}  ${printable(event.kind).padEnd(11)} ${event.peerId === undefined ? '-' : printable(event.peerId)}  ${what}  (session ${printable(event.session)}${broker})`;
}
