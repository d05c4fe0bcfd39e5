import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  type Relation,
  UpdateDateColumn,
} from 'typeorm';
import { User } from '../users/user.entity.js';

export const TODO_TITLE_MAX = 200;
export const TODO_DESCRIPTION_MAX = 2000;

@Entity({ name: 'todos' })
// Serves the list query: the caller's todos, newest first.
@Index('ix_todos_user_created', ['userId', 'createdAt', 'id'])
export class Todo {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_todos_user' })
  user?: Relation<User>;

  @Column({ type: 'varchar', length: TODO_TITLE_MAX })
  title!: string;

  @Column({ type: 'varchar', length: TODO_DESCRIPTION_MAX, nullable: true })
  description!: string | null;

  @Column({ type: 'boolean', default: false })
  completed!: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
