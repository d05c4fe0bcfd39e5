import { Global, Module } from '@nestjs/common';
import { Transactions } from './transactions.js';

/** What every feature's writes share: the transaction runner over the app's data source. */
@Global()
@Module({ providers: [Transactions], exports: [Transactions] })
export class DatabaseModule {}
