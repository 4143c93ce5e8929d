output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig context for the cluster (run it as admin_role_arn)."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  value       = module.vpc.vpc_id
}

output "airflow_role_arn" {
  description = "IAM role Airflow's service accounts receive through Pod Identity (outputs bucket access)."
  value       = aws_iam_role.airflow.arn
}

output "model_builder_role_arn" {
  description = "IAM role model build pods receive through Pod Identity (model registry access)."
  value       = aws_iam_role.model_builder.arn
}

output "outputs_bucket_name" {
  description = "S3 bucket for TaskOrchestration outputs: use it as spec.output.storage.bucket."
  value       = aws_s3_bucket.outputs.bucket
}

output "outputs_kms_key_arn" {
  description = "KMS key that encrypts the outputs bucket; other readers need kms:Decrypt on it."
  value       = aws_kms_key.outputs.arn
}

output "model_registry_url" {
  description = "Value for AISTACK_REGISTRY when build storage is \"registry\": <registry host>/<namespace>."
  value       = local.model_registry_url
}

output "model_repository_urls" {
  description = "ECR repository URL of each model, by model name."
  value       = { for name, repo in aws_ecr_repository.models : name => repo.repository_url }
}
