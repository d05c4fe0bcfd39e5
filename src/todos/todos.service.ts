import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { runSql } from '../database/sql.js';
import { NotFoundError } from '../common/errors.js';
import type { CreateTodoDto, ListTodosQueryDto, UpdateTodoDto } from './dto/todo.dto.js';
import { Todo } from './todo.entity.js';

/** Every query here is scoped by the owner's id: another user's todo is simply not found. */
@Injectable()
export class TodosService {
  constructor(@InjectRepository(Todo) private readonly todos: Repository<Todo>) {}

  /**
   * One page and the total in one statement (a window count), instead of a
   * page query plus a COUNT. Served by ix_todos_user_created. Only a page past
   * the end (no rows to carry the count) needs a second query.
   */
  async list(userId: string, query: ListTodosQueryDto): Promise<{ items: Todo[]; total: number }> {
    // Two statement texts rather than "$2 IS NULL OR completed = $2": each
    // keeps a simple plan on ix_todos_user_created.
    const filtered = query.completed !== undefined;
    const where = filtered ? 'user_id = $1 AND completed = $4' : 'user_id = $1';
    const params: unknown[] = [userId, query.limit, query.offset];
    if (filtered) params.push(query.completed);
    const result = await runSql<TodoRow & { total: string }>(
      this.todos.manager,
      `SELECT id, user_id, title, description, completed, created_at, updated_at,
              count(*) OVER () AS total
         FROM todos
        WHERE ${where}
        ORDER BY created_at DESC, id DESC
        LIMIT $2 OFFSET $3`,
      params,
    );
    const items = result.rows.map(toTodo);
    if (result.rows.length > 0) return { items, total: Number(result.rows[0].total) };
    if (query.offset === 0) return { items, total: 0 };
    const count = await runSql<{ total: string }>(
      this.todos.manager,
      `SELECT count(*) AS total FROM todos WHERE ${filtered ? 'user_id = $1 AND completed = $2' : 'user_id = $1'}`,
      filtered ? [userId, query.completed] : [userId],
    );
    return { items, total: Number(count.rows[0].total) };
  }

  async create(userId: string, input: CreateTodoDto): Promise<Todo> {
    const todo = this.todos.create({
      id: randomUUID(),
      userId,
      title: input.title,
      description: input.description ?? null,
      completed: input.completed ?? false,
    });
    return this.todos.save(todo);
  }

  async get(userId: string, id: string): Promise<Todo> {
    const todo = await this.todos.findOne({ where: { id, userId } });
    if (!todo) throw new NotFoundError('Todo not found');
    return todo;
  }

  async update(userId: string, id: string, input: UpdateTodoDto): Promise<Todo> {
    const changes: Partial<Pick<Todo, 'title' | 'description' | 'completed'>> = {};
    if (input.title !== undefined) changes.title = input.title;
    if (input.description !== undefined) changes.description = input.description;
    if (input.completed !== undefined) changes.completed = input.completed;
    if (Object.keys(changes).length > 0) {
      // One conditional UPDATE scoped by owner: no read-modify-write window.
      const result = await this.todos
        .createQueryBuilder()
        .update(Todo)
        .set(changes)
        .where('id = :id AND user_id = :userId', { id, userId })
        .execute();
      if (result.affected === 0) throw new NotFoundError('Todo not found');
    }
    return this.get(userId, id);
  }

  async remove(userId: string, id: string): Promise<void> {
    const result = await this.todos.delete({ id, userId });
    if (result.affected === 0) throw new NotFoundError('Todo not found');
  }
}

interface TodoRow {
  id: string;
  user_id: string;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: Date;
  updated_at: Date;
}

function toTodo(row: TodoRow): Todo {
  return Object.assign(new Todo(), {
    id: row.id,
    userId: row.user_id,
    title: row.title,
    description: row.description,
    completed: row.completed,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}
