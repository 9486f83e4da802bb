import { MaxLength, MinLength, Pattern, validate } from '@deepkit/type';
import { InvalidPeerId } from './errors';

/** Letters, digits and `._-`, 1 to 64 characters. Kept ASCII because peer IDs travel as ASCII in frame headers. */
export const PEER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export type PeerId = string & MinLength<1> & MaxLength<64> & Pattern<typeof PEER_ID_PATTERN>;

export function isValidPeerId(value: unknown): value is PeerId {
    return validate<PeerId>(value).length === 0;
}

export function assertValidPeerId(value: unknown): asserts value is PeerId {
    if (!isValidPeerId(value)) {
        throw new InvalidPeerId(
            `Invalid peer ID ${JSON.stringify(value)}: use 1 to 64 letters, digits, ".", "_" or "-".`,
            typeof value === 'string' ? value.slice(0, 80) : '',
        );
    }
}

/**
 * An ID pattern as used in token grants and send policies: an exact ID, `prefix*`, or `*` for any.
 */
export function matchesPeerPattern(pattern: string, peerId: string): boolean {
    if (pattern === '*') return true;
    if (pattern.endsWith('*')) return peerId.startsWith(pattern.slice(0, -1));
    return pattern === peerId;
}
