import { rpc } from '@deepkit/rpc';
import { MaxLength, MinLength } from '@deepkit/type';
import { GrantsApi, GrantTicket, ResourceName, Right } from '@switchboard/protocol';
import { CallerContext } from '../../caller-context';
import { Grants } from './grants';

/** Answers handshakes; the caller a grant is bound to is the one the broker verified. */
@rpc.controller(GrantsApi)
export class GrantsController implements GrantsApi {
    constructor(protected grants: Grants, protected caller: CallerContext) {
    }

    @rpc.action()
    async handshake(resource: ResourceName, rights: Right[] & MinLength<1> & MaxLength<32>): Promise<GrantTicket> {
        return this.grants.answerHandshake(this.caller.requirePeerId(), resource, rights);
    }
}
