import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Max, Min, ValidateIf } from 'class-validator';
import { CodePointLength } from '../../common/text-length.js';
import { TODO_DESCRIPTION_MAX, TODO_TITLE_MAX, type Todo } from '../todo.entity.js';

// Lengths are code points, as the varchar columns count them (see CodePointLength).
const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateTodoDto {
  @ApiProperty({ example: 'Buy milk', minLength: 1, maxLength: TODO_TITLE_MAX })
  @Transform(trim)
  @IsString()
  @CodePointLength(1, TODO_TITLE_MAX)
  title!: string;

  @ApiPropertyOptional({ type: String, nullable: true, maxLength: TODO_DESCRIPTION_MAX })
  @IsOptional()
  @IsString()
  @CodePointLength(0, TODO_DESCRIPTION_MAX)
  description?: string | null;

  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @IsBoolean()
  completed?: boolean;
}

/**
 * Any subset of the fields. `null` clears the description; it is refused for
 * title and completed (ValidateIf instead of IsOptional, which would let null through).
 */
export class UpdateTodoDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: TODO_TITLE_MAX })
  @ValidateIf((o: UpdateTodoDto) => o.title !== undefined)
  @Transform(trim)
  @IsString()
  @CodePointLength(1, TODO_TITLE_MAX)
  title?: string;

  @ApiPropertyOptional({ type: String, nullable: true, maxLength: TODO_DESCRIPTION_MAX })
  @IsOptional()
  @IsString()
  @CodePointLength(0, TODO_DESCRIPTION_MAX)
  description?: string | null;

  @ApiPropertyOptional()
  @ValidateIf((o: UpdateTodoDto) => o.completed !== undefined)
  @IsBoolean()
  completed?: boolean;
}

export const TODO_PAGE_MAX = 100;
export const TODO_PAGE_DEFAULT = 20;
export const TODO_OFFSET_MAX = 1_000_000;

const toBoolean = ({ value }: { value: unknown }) =>
  value === 'true' ? true : value === 'false' ? false : value;

export class ListTodosQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: TODO_PAGE_MAX, default: TODO_PAGE_DEFAULT })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(TODO_PAGE_MAX)
  limit: number = TODO_PAGE_DEFAULT;

  @ApiPropertyOptional({ minimum: 0, maximum: TODO_OFFSET_MAX, default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(TODO_OFFSET_MAX)
  offset: number = 0;

  @ApiPropertyOptional({ description: 'Only completed (true) or open (false) todos' })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  completed?: boolean;
}

export class TodoResponseDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty()
  title!: string;

  @ApiProperty({ type: String, nullable: true })
  description!: string | null;

  @ApiProperty()
  completed!: boolean;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;

  static from(todo: Todo): TodoResponseDto {
    return {
      id: todo.id,
      title: todo.title,
      description: todo.description,
      completed: todo.completed,
      created_at: todo.createdAt.toISOString(),
      updated_at: todo.updatedAt.toISOString(),
    };
  }
}
