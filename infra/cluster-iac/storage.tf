# The bucket TaskOrchestrations publish to (output.storage type "s3"):
# result.json / result.md under <prefix><namespace>/<name>/<run>/.
#
# Encryption is SSE-KMS with a key of its own rather than SSE-S3 (AES256): only
# principals allowed on this key can read results, and every decrypt is
# recorded in CloudTrail. The S3 Bucket Key keeps the KMS request count (and
# cost) low.

resource "aws_kms_key" "outputs" {
  description             = "aistack ${var.cluster_name}: pipeline outputs in S3"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "outputs" {
  name          = "alias/${var.cluster_name}-outputs"
  target_key_id = aws_kms_key.outputs.key_id
}

resource "aws_s3_bucket" "outputs" {
  bucket = local.outputs_bucket_name
}

# ACLs off: the bucket owner owns every object, access is by policy only.
resource "aws_s3_bucket_ownership_controls" "outputs" {
  bucket = aws_s3_bucket.outputs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "outputs" {
  bucket = aws_s3_bucket.outputs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versioned so a failureAction "rollback" (which deletes what a run
# published) and accidental overwrites can be undone from older versions.
resource "aws_s3_bucket_versioning" "outputs" {
  bucket = aws_s3_bucket.outputs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "outputs" {
  bucket = aws_s3_bucket.outputs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.outputs.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "outputs" {
  bucket = aws_s3_bucket.outputs.id

  # Current results stay; replaced or deleted versions expire, so versioning
  # does not grow the bucket forever.
  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.outputs_noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # A noncurrent-version rule presumes versioning: set that up first.
  depends_on = [aws_s3_bucket_versioning.outputs]
}

# TLS only: refuses plain-HTTP requests, whoever makes them.
data "aws_iam_policy_document" "outputs_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.outputs.arn,
      "${aws_s3_bucket.outputs.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "outputs" {
  bucket = aws_s3_bucket.outputs.id
  policy = data.aws_iam_policy_document.outputs_bucket.json

  # S3 rejects a bucket policy while the public access block is being set.
  depends_on = [aws_s3_bucket_public_access_block.outputs]
}
