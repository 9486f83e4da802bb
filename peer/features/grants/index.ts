import { GrantsApi } from '@switchboard/protocol';
import { PeerFeature } from '../../feature';
import { HeldGrant, IssuedGrant } from './grant-entities';
import { defaultGrantsOptions, Grants, GrantsOptions } from './grants';
import { GrantsController } from './grants-controller';

export { Grants } from './grants';
export type { GrantDecision, GrantsOptions, ProtectOptions } from './grants';
export type { GrantClaims } from './grant-token';
export { IssuedGrant } from './grant-entities';

/**
 * Resource grants as a peer feature: `Peer.connect({ url, id, features: { grants: grants() } })`. Controllers get
 * `Grants` injected to check a call: `await this.grants.require(this.caller, token, resource, right)`.
 */
export function grants(options: Partial<GrantsOptions> = {}): PeerFeature<Grants> {
    return {
        entities: [IssuedGrant, HeldGrant],
        setup(context) {
            const api = new Grants(context, { ...defaultGrantsOptions, ...options });
            return {
                api,
                providers: [{ provide: Grants, useValue: api }],
                controllers: [[GrantsController, GrantsApi]],
                started: () => api.started(),
            };
        },
    };
}
