import { entity, Index, PrimaryKey } from '@deepkit/type';

/** A grant this peer issued: kept so revocations survive a restart and the app can list who holds what. */
@(entity.name('issued_grant').collection('issued_grants'))
export class IssuedGrant {
    revokedAt?: Date;

    constructor(
        public id: string & PrimaryKey,
        public holder: string & Index,
        public resource: string & Index,
        public rights: string[],
        public expiresAt: Date,
        public issuedAt: Date,
    ) {
    }
}

/** A grant this peer holds from another, so a restarted app can present it again. */
@(entity.name('held_grant').collection('held_grants'))
export class HeldGrant {
    constructor(
        /** Grantor, resource: the latest grant replaces the one before. */
        public key: string & PrimaryKey,
        public id: string,
        public grantor: string,
        public resource: string,
        public rights: string[],
        public token: string,
        public expiresAt: Date,
    ) {
    }
}
