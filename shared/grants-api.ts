import { ControllerSymbol } from '@deepkit/rpc';
import { MaxLength, MinLength, Pattern } from '@deepkit/type';

export const RESOURCE_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
/** What a grant opens, as the granting peer's app names it: `doc:42`, `room/lobby`, … (1 to 128 characters). */
export type ResourceName = string & MinLength<1> & MaxLength<128> & Pattern<typeof RESOURCE_PATTERN>;
/** One right on a resource: `read`, `write`, … (1 to 64 characters). */
export type Right = string & MinLength<1> & MaxLength<64> & Pattern<typeof RIGHT_PATTERN>;
export const RIGHT_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * A grant as its holder receives it. `token` is what the holder presents on each call; it is bound to the holder's
 * broker-verified ID, the resource, the rights and the expiry, and signed by the granting peer (HMAC-SHA-256).
 */
export interface GrantTicket {
    id: string;
    token: string;
    grantor: string;
    holder: string;
    resource: string;
    rights: string[];
    expiresAt: Date;
}

/**
 * Resource grants (peer feature `grants()`): a peer asks another for rights on one of its resources and gets a
 * token if the other's app decides so. Refusals are AccessDenied with reason `grant-refused`, the same for a
 * resource that is not protected.
 */
export interface GrantsApi {
    handshake(resource: ResourceName, rights: Right[] & MinLength<1> & MaxLength<32>): Promise<GrantTicket>;
}

export const GrantsApi = ControllerSymbol<GrantsApi>('switchboard/grants');

/** A grant's token as an action parameter: `read(docId: string, grant: GrantToken)`. */
export type GrantToken = string & MinLength<1> & MaxLength<4096>;
